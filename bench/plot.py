"""One PNG per run: throughput against the bounds, inference by batch size, latency under load."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def draw(results: dict, out_path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    _throughput(axes[0], results)
    _inference(axes[1], results.get("inference") or {})
    _latency(axes[2], results.get("latency") or {})
    fig.suptitle(
        f"stream-tagger benchmarks — {results['name']} ({results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores; load at start {results['machine']['load_average_at_start'][0]})"
    )
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def _throughput(ax, results: dict) -> None:
    bars = []
    for label, key, field in (
        ("decode bound", "decode", "videos_per_s"),
        ("decode bound, today's", "decode", "today_videos_per_s"),
        ("naive", "naive", "videos_per_s"),
        ("stream-tagger", "worker", "videos_per_s"),
        ("stream-tagger ×2 proc", "scaling", "videos_per_s"),
    ):
        figure = (results.get(key) or {}).get(field)
        if figure:
            bars.append((label, figure))
    labels = [b[0] for b in bars]
    medians = [b[1]["median"] for b in bars]
    errors = [
        [m - b[1]["min"] for m, b in zip(medians, bars)],
        [b[1]["max"] - m for m, b in zip(medians, bars)],
    ]
    colours = {
        "decode bound": "#888",
        "decode bound, today's": "#bbb",
        "naive": "#c44",
        "stream-tagger": "#27a",
        "stream-tagger ×2 proc": "#5ad",
    }
    ax.bar(labels, medians, yerr=errors, capsize=4, color=[colours[label] for label in labels])
    for x, m in enumerate(medians):
        ax.annotate(f"{m:.2f}", (x, m), ha="center", va="bottom", xytext=(0, 4), textcoords="offset points")
    ax.set_ylabel("videos/s (median, min–max)")
    ax.set_title("steady-state throughput, same videos, one run")
    ax.tick_params(axis="x", labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")


def _inference(ax, inference: dict) -> None:
    for engine, data in inference.items():
        if "batches" not in data:
            continue
        sizes = [int(b) for b in data["batches"]]
        ax.plot(
            sizes,
            [data["batches"][str(b)]["videos_per_s"] for b in sizes],
            marker="o",
            label=f"{engine} ({data['backend']})",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("videos/s (inference only)")
    ax.set_title("inference alone per engine")
    if inference:
        ax.legend(fontsize=8)


def _latency(ax, latency: dict) -> None:
    levels = [k for k, v in latency.items() if isinstance(v, dict) and v.get("latency_ms")]
    for offset, point in enumerate(("p50", "p95", "p99")):
        values = [latency[level]["latency_ms"][point] for level in levels]
        ax.bar([i + (offset - 1) * 0.27 for i in range(len(levels))], values, width=0.27, label=point)
    ax.set_xticks(range(len(levels)), [f"{lv} load" for lv in levels])
    ax.set_ylabel("event → tag latency, ms")
    ax.set_title("latency under open-loop load")
    if levels:
        ax.legend(fontsize=8)
