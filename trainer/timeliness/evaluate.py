"""``stream-tagger-train evaluate timeliness``: score an exported engine with ONNX Runtime on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stream_tagger.engines.repository import load_engine
from trainer.datasets.format import Dataset
from trainer.datasets.views import FramesView, cached_view
from trainer.single_label import SingleLabels, single_label_clips
from trainer.timeliness.scoring import plot_confusion, summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (clean labels)")
    parser.add_argument("--engine", type=Path, required=True, help="engine version dir, e.g. engines/timeliness/1")
    parser.add_argument("--json", type=Path, required=True, help="where to write the metrics")
    parser.add_argument("--results", type=Path, help="folder for the PNG (default: the folder of --json)")


def run(args: argparse.Namespace) -> int:
    engine = load_engine(args.engine, "onnxruntime")
    manifest, (policy,) = engine.manifest, engine.sampling_policies
    labels = manifest.labels["timeliness"]
    dataset = Dataset.load(args.data)
    clips = single_label_clips(dataset, dataset.split_rows("eval"), SingleLabels("timeliness", list(labels)),
                               cached_view(dataset, FramesView(policy)))
    rows = [dataset.rows[i].model_dump() for i in clips.rows]
    titles = [row.get("title") or "" for row in rows]
    outputs = {"timeliness_probs": [], "visual_probs": [], "text_probs": []}
    for start in range(0, len(rows), 64):
        frames = clips.inputs(range(start, min(start + 64, len(rows))))
        result = engine.infer({policy: frames}, titles[start:start + 64])
        for name in outputs:
            outputs[name].append(result[name])
    engine.close()
    truth = clips.targets["label"]
    predicted = {name: np.concatenate(values).argmax(1) for name, values in outputs.items()}
    report = summary(truth, predicted["timeliness_probs"], labels)
    report.update(engine=manifest.ref, data=str(args.data),
                  visual_accuracy=float((predicted["visual_probs"] == truth).mean()),
                  text_accuracy=float((predicted["text_probs"] == truth).mean()))
    report["by_evidence"] = evidence_breakdown(rows, truth, predicted["timeliness_probs"])
    report["by_mode"] = mode_breakdown(rows, truth, predicted["timeliness_probs"])
    png = (args.results or args.json.parent) / "confusion.png"
    plot_confusion(np.asarray(report["confusion"]), labels, f"timeliness {manifest.ref}", png)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("accuracy", "visual_accuracy", "text_accuracy", "per_class_recall")}))
    return 0


def mode_breakdown(rows: list[dict], truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """World v2: accuracy per evidence mode (joint / title / visual / both) and on noisy-title clips."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        evidence = row.get("evidence") or {}
        if "mode" not in evidence:
            continue
        groups.setdefault(evidence["mode"], []).append(i)
        if evidence.get("title_noisy"):
            groups.setdefault("title_noisy", []).append(i)
    return {key: {"clips": len(index), "accuracy": float((truth[index] == predicted[index]).mean())}
            for key, index in sorted(groups.items())}


def evidence_breakdown(rows: list[dict], truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """Accuracy per (title evidence, visual evidence) combination: tells which cue is too weak."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        evidence = row.get("evidence") or {}
        key = f"title={evidence.get('title')},visual={evidence.get('visual')}"
        groups.setdefault(key, []).append(i)
    return {key: {"clips": len(index), "accuracy": float((truth[index] == predicted[index]).mean())}
            for key, index in sorted(groups.items())}
