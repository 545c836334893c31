"""Markdown tables from a results JSON (pasted into docs/benchmarks.md): ``python -m bench.report_md FILE``."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render(results: dict) -> str:
    lines = [
        (
            f"Run `{results['name']}`: `{results['command']}`, {results['machine']['cpu_model']}, "
            f"{results['machine']['cores']} cores, load average at start "
            f"{results['machine']['load_average_at_start']}, at end {results['summary']['load_average_at_end']}."
        ),
        "",
    ]
    lines += _throughput(results) + [""] + _latency(results.get("latency") or {}) + [""]
    lines += _inference(results.get("inference") or {}) + [""] + _variants(results.get("variants") or {})
    return "\n".join(lines) + "\n"


def _cell(figure: dict | None) -> str:
    if not figure or "median" not in figure:
        return "n/a"
    return f"{figure['median']:.2f} ({figure['min']:.2f}–{figure['max']:.2f})"


def _throughput(results: dict) -> list[str]:
    rows = [
        ("decode bound (best of 1 process, 2 processes, 2 threads)", "decode"),
        ("naive baseline", "naive"),
        ("stream-tagger, 1 worker process", "worker"),
        ("stream-tagger, 2 worker processes", "scaling"),
    ]
    lines = ["| videos/s, median (min–max) of 3 | |", "|---|---|"]
    lines += [f"| {label} | {_cell((results.get(key) or {}).get('videos_per_s'))} |" for label, key in rows]
    summary = results["summary"]
    lines += [
        "",
        (
            f"worker / decode bound = **{summary['worker_over_decode_bound']}**, "
            f"worker / naive = **{summary['worker_over_naive']}**, "
            f"2 workers / 1 = **{summary['two_workers_over_one']}**"
        ),
    ]
    return lines


def _latency(latency: dict) -> list[str]:
    lines = [
        "| load | rate/s | events | p50 ms | p95 ms | p99 ms | worker stages (median ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for level, data in latency.items():
        if not isinstance(data, dict) or not data.get("latency_ms"):
            continue
        ms = data["latency_ms"]
        stages = ", ".join(f"{k} {v}" for k, v in data.get("worker_stage_ms", {}).items())
        lines.append(
            f"| {level} | {data['rate_per_s']} | {data['answered']}/{data['events']} | {ms['p50']} | "
            f"{ms['p95']} | {ms['p99']} | {stages} |"
        )
    return lines


def _inference(inference: dict) -> list[str]:
    inference = {k: v for k, v in inference.items() if isinstance(v, dict) and "batches" in v}
    sizes = sorted({int(b) for data in inference.values() for b in data["batches"]})
    lines = [
        "| engine (backend) | " + " | ".join(f"batch {b}: ms / videos/s" for b in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for engine, data in inference.items():
        cells = [
            f"{data['batches'][str(b)]['ms_per_batch']['median']} / {data['batches'][str(b)]['videos_per_s']}"
            for b in sizes
            if str(b) in data.get("batches", {})
        ]
        lines.append(f"| {engine} ({data.get('backend')}) | " + " | ".join(cells) + " |")
    return lines


def _variants(variants: dict) -> list[str]:
    lines = [
        "| decode variant (1 process) | ms/video | frames decoded/video | speed-up |",
        "|---|---|---|---|",
    ]
    for name, data in variants.items():
        if isinstance(data, dict) and "ms_per_video" in data:
            lines.append(
                f"| {name} | {_cell(data['ms_per_video'])} | {data['frames_decoded_per_video']} | {data['speedup']} |"
            )
    return lines


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
