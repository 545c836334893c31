"""Markdown tables from a results JSON (pasted into docs/benchmarks.md): ``python -m bench.report_md FILE``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.stats import paired_by_round


def render(results: dict) -> str:
    lines = [
        (
            f"Run `{results['name']}`: `{results['command']}`, {results['machine']['cpu_model']}, "
            f"{results['machine']['cores']} cores, load average at start "
            f"{results['machine']['load_average_at_start']}, at end {results['summary']['load_average_at_end']}."
        ),
        "",
    ]
    lines += _throughput(results) + [""] + _steady(results) + [""] + _cpu(results) + [""]
    lines += _latency(results.get("latency") or {}) + [""] + _per_video(results.get("decode") or {}) + [""]
    lines += _inference(results.get("inference") or {}) + [""] + _variants(results.get("variants") or {})
    lines += [""] + _gil(results.get("profile") or {})
    return "\n".join(lines) + "\n"


def _cell(figure: dict | None) -> str:
    if not figure or "median" not in figure:
        return "n/a"
    return f"{figure['median']:.2f} ({figure['min']:.2f}–{figure['max']:.2f})"


def _throughput(results: dict) -> list[str]:
    decode = results.get("decode") or {}
    rows = [
        (f"decode bound, served policies ({decode.get('mode', 'best mode')})", decode.get("videos_per_s")),
        (f"decode bound, today's: every frame, deblocked ({decode.get('today_mode', 'best mode')})", decode.get("today_videos_per_s")),
        ("naive baseline", (results.get("naive") or {}).get("videos_per_s")),
        ("stream-tagger, 1 worker process", (results.get("worker") or {}).get("videos_per_s")),
        ("stream-tagger, 2 worker processes", (results.get("scaling") or {}).get("videos_per_s")),
    ]
    count = results.get("repetitions", 3)
    lines = [f"| videos/s, median (min–max) of {count}, steady state | |", "|---|---|"]
    lines += [f"| {label} | {_cell(figure)} |" for label, figure in rows]
    summary = results["summary"]
    lines += [
        "",
        (
            f"worker / decode bound = **{summary['worker_over_decode_bound']}**, "
            f"served decode bound / today's = **{summary.get('served_decode_bound_over_today')}**, "
            f"worker / naive = **{summary['worker_over_naive']}**, "
            f"2 workers / 1 = **{summary['two_workers_over_one']}**"
        ),
    ]
    paired = _paired(results)
    if paired:
        lines += ["", (f"Paired by round (each round's worker repetition against the bound's repetitions right after "
                       f"it, median (min–max) of {paired['rounds']} rounds): worker / decode bound = "
                       f"**{_cell(paired['worker_over_decode_bound'])}**, served / today's = "
                       f"**{_cell(paired['served_over_today'])}**")]
    return lines


def _paired(results: dict) -> dict | None:
    """The run's paired ratios; computed from its repetitions for runs made before they were recorded."""
    steady = results.get("steady") or {}
    if "paired" in steady or not steady.get("worker"):
        return steady.get("paired")
    by_mode = {name: mode["values"] for name, mode in steady["decode_bound"]["by_mode"].items()}
    return paired_by_round(steady["worker"]["videos_per_s"]["values"], by_mode)


def _steady(results: dict) -> list[str]:
    """Every repetition in the order it ran (A B A B …), so drift shows."""
    steady = results.get("steady") or {}
    if not steady:
        return []
    lines = [
        f"Repetitions ({steady['events_per_repetition']} events each; rate over the "
        f"{steady['events_per_repetition'] - 1 - 2 * steady['skipped_at_each_end']} completions between the "
        f"{steady['skipped_at_each_end']}th and the {steady['skipped_at_each_end']}th from last), in run order:",
        "",
        "| # | what | videos/s | window s | frames decoded/video | busy cores | idle / steal cores | "
        "worker (+ decode processes) | broker | bench | other processes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    worker_reps = iter(steady["worker"]["repetitions"])
    bound_reps = {k: iter(v["repetitions"]) for k, v in steady["decode_bound"]["by_mode"].items()}
    for index, name in enumerate(steady["order"], 1):
        rep = next(worker_reps) if name == "worker" else next(bound_reps[name])
        cpu = rep.get("cpu") or {}
        cores = cpu.get("processes_cores") or {}
        groups = [cores.get(k) for k in ("worker", "worker children (decode processes)", "broker")]
        bench = next((v for k, v in cores.items() if k.startswith("bench")), None)
        idle, steal = (round(sum(c[k] for c in (cpu.get("cores") or {}).values()), 3) for k in ("idle", "steal"))
        lines.append(
            f"| {index} | {name} | {rep['videos_per_s']:.2f} | {rep['window_s']} | "
            f"{rep.get('frames_decoded_per_video', '')} | {cpu.get('busy_cores', '')} | {idle} / {steal} | {groups[0]} (+ {groups[1]}) | "
            f"{groups[2]} | {bench} | {cores.get('other processes (not this bench)')} |"
        )
    return lines


def _cpu(results: dict) -> list[str]:
    """Where the cores went during the worker's repetitions (mean over them)."""
    reps = [r.get("cpu") or {} for r in ((results.get("steady") or {}).get("worker") or {}).get("repetitions", [])]
    reps = [r for r in reps if "cores" in r]
    if not reps:
        return []
    mean = lambda values: round(sum(values) / len(values), 3)
    lines = ["| during the worker's repetitions (mean) | busy | idle | iowait | steal |", "|---|---|---|---|---|"]
    for core in reps[0]["cores"]:
        cells = [mean([r["cores"][core][k] for r in reps]) for k in ("busy", "idle", "iowait", "steal")]
        lines.append(f"| {core} | " + " | ".join(map(str, cells)) + " |")
    lines += ["", "| process | cores |", "|---|---|"]
    for group in reps[0]["processes_cores"]:
        lines.append(f"| {group} | {mean([r['processes_cores'].get(group, 0.0) for r in reps])} |")
    lines += ["", "| worker threads | threads | on CPU | run-queue wait | off CPU (GIL, I/O or no work) |",
              "|---|---|---|---|---|"]
    for name, first in reps[0]["worker_threads"].items():
        values = [r["worker_threads"].get(name, {}) for r in reps]
        cells = [mean([v.get(k, 0.0) for v in values]) for k in ("on_cpu", "runqueue_wait", "off_cpu")]
        lines.append(f"| {name} | {first['threads']} | " + " | ".join(map(str, cells)) + " |")
    return lines


def _per_video(decode: dict) -> list[str]:
    per_video = decode.get("per_video") or {}
    if not per_video:
        return []
    configs = list(per_video)
    lines = [
        "| video | " + " | ".join(f"{c}: ms / frames decoded" for c in configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for video in per_video[configs[0]]:
        cells = [f"{per_video[c][video]['ms']} / {per_video[c][video]['frames_decoded']}" for c in configs]
        lines.append(f"| {video} | " + " | ".join(cells) + " |")
    return lines


def _gil(profile: dict) -> list[str]:
    gil = profile.get("gil") or {}
    if "gil_held_share" not in gil:
        return []
    by_thread = ", ".join(f"{k} {v}" for k, v in gil["gil_held_share_by_thread"].items())
    return [f"GIL held {gil['gil_held_share']:.0%} of the wall time during the profile (py-spy --gil): {by_thread}."]


def _latency(latency: dict) -> list[str]:
    lines = [
        "| load | rate/s | events (s) | p50 ms | p95 ms | p99 ms | worker stages (median ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for level, data in latency.items():
        if not isinstance(data, dict) or not data.get("latency_ms"):
            continue
        ms = data["latency_ms"]
        stages = ", ".join(f"{k} {v}" for k, v in data.get("worker_stage_ms", {}).items())
        lines.append(
            f"| {level} | {data['rate_per_s']} | {data['answered']}/{data['events']} ({data.get('seconds', '')}) | {ms['p50']} | "
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
        "| decode variant (1 process) | CPU ms/video | frames decoded/video | speed-up |",
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
