"""``stream-tagger-train evaluate classifier``: an engine version through ONNX Runtime on a labelled dataset.

    stream-tagger-train evaluate classifier --data data/eval --engine engines/classifier/1 \\
        --json docs/results/classifier/eval.json

The label sets are the engine's (its manifest); the dataset's rows with labels outside them are
reported and left out. Only the outputs the engine has are scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stream_tagger.aggregation import AggregationRule, aggregate_tags
from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import load_engine
from trainer.classifier.clips import ClassifierLabels, classifier_clips
from trainer.classifier.metrics import classifier_metrics, confusion, micro_f1, per_label_average_precision
from trainer.common import save_confusion_png
from trainer.datasets.clips import ClipSet
from trainer.datasets.format import Dataset
from trainer.datasets.views import FramesView, cached_view


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="labelled dataset (rows with split eval or none)")
    parser.add_argument("--engine", type=Path, required=True, help="engine version folder, e.g. engines/classifier/1")
    parser.add_argument("--json", type=Path, required=True, help="where to write the metrics")
    parser.add_argument("--png-dir", type=Path, help="confusion matrix PNGs (default: beside --json)")
    parser.add_argument("--batch", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    manifest = EngineManifest.load(args.engine)
    first, *others = manifest.sampling_policies  # frames, and the quality branch's fragments if it has them
    labels = ClassifierLabels(*(list(manifest.labels.get(f, [])) for f in ("category", "tags", "quality")))
    dataset = Dataset.load(args.data)
    clips = classifier_clips(dataset, dataset.split_rows("eval"), labels, cached_view(dataset, FramesView(first)),
                             truth=True)
    for k, policy in enumerate(others):
        clips = clips.with_source(f"policy{k + 1}", cached_view(dataset, FramesView(policy)))
    outputs = infer(args.engine, clips, args.batch)
    metrics = {"engine": manifest.ref, "data": str(args.data), "clips": len(clips),
               **classifier_metrics(outputs, clips.targets)}
    if "tag_probs" in outputs and clips.targets["has_tags"].any():
        tagged = clips.targets["has_tags"]
        truth = clips.targets["tags"][tagged]
        metrics.update(aggregation_f1({k: v[tagged] for k, v in outputs.items()}, truth, manifest))
        metrics["tag_ap"] = dict(zip(labels.tags, per_label_average_precision(outputs["tag_probs"][tagged], truth)))
    metrics["confusion_pngs"] = save_confusions(outputs, clips, manifest, args.png_dir or args.json.parent)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return 0


def infer(version_dir: Path, clips: ClipSet, batch: int) -> dict[str, np.ndarray]:
    engine = load_engine(version_dir, "onnxruntime")
    first, *others = engine.sampling_policies
    sources = [clips.source, *(clips.extra_sources[f"policy{k + 1}"] for k in range(len(others)))]
    parts = []
    for start in range(0, len(clips), batch):
        rows = clips.rows[start:start + batch]
        frames = {policy: np.stack([source.read(int(row)) for row in rows])
                  for policy, source in zip([first, *others], sources)}
        parts.append(engine.infer(frames, [""] * len(rows)))
    engine.close()
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}


def aggregation_f1(outputs: dict[str, np.ndarray], true_tags: np.ndarray, manifest: EngineManifest) -> dict[str, float]:
    """Micro-F1 of the video tags each worker-side aggregation rule would publish."""
    labels = manifest.labels["tags"]
    defaults = manifest.serving.get("aggregation", {})
    scores = {}
    per_frame = outputs.get("frame_tag_probs")
    for rule_name in ("pooled_threshold", "frame_count", "top_n") if per_frame is not None else ("pooled_threshold",):
        rule = AggregationRule(**{**defaults, "rule": rule_name})
        predicted = np.zeros_like(true_tags)
        for i in range(len(true_tags)):
            frames = per_frame[i] if per_frame is not None else outputs["tag_probs"][i][None]
            for label, _ in aggregate_tags(frames, outputs["tag_probs"][i], labels, rule):
                predicted[i, labels.index(label)] = 1
        scores[f"tag_micro_f1_{rule_name}"] = micro_f1(predicted, true_tags)
    return scores


def save_confusions(outputs: dict[str, np.ndarray], clips: ClipSet, manifest: EngineManifest, out_dir: Path) -> list[str]:
    paths = []
    for head in ("category", "quality"):
        truth = clips.targets[head]
        if f"{head}_probs" not in outputs or not (truth >= 0).any():
            continue
        labels = manifest.labels[head]
        valid = truth >= 0
        matrix = confusion(truth[valid], outputs[f"{head}_probs"][valid].argmax(1), len(labels))
        paths.append(str(save_confusion_png(matrix, labels, f"{head} ({manifest.ref})", out_dir / f"{head}_confusion.png")))
    return paths
