"""``stream-tagger-train evaluate classifier``: an engine version through ONNX Runtime on a clean dataset.

    stream-tagger-train evaluate classifier --data data/eval --engine engines/classifier/1 \\
        --json docs/results/classifier/eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stream_tagger.aggregation import AggregationRule, aggregate_tags
from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import load_engine
from trainer.classifier.clips import ClipSet, load_clips
from trainer.classifier.metrics import classifier_metrics, confusion, micro_f1, per_label_average_precision
from trainer.common import save_confusion_png


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="clean evaluation dataset folder")
    parser.add_argument("--engine", type=Path, required=True, help="engine version folder, e.g. engines/classifier/1")
    parser.add_argument("--json", type=Path, required=True, help="where to write the metrics")
    parser.add_argument("--png-dir", type=Path, help="confusion matrix PNGs (default: beside --json)")
    parser.add_argument("--batch", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    manifest = EngineManifest.load(args.engine)
    clips = load_clips(args.data)
    outputs = infer(args.engine, manifest, clips, args.batch)
    true_tags = clips.true_tags.numpy()
    metrics = {"engine": manifest.ref, "data": str(args.data), "clips": len(clips),
               **classifier_metrics(outputs, clips.category.numpy(), true_tags, clips.quality.numpy()),
               **aggregation_f1(outputs, true_tags, manifest),
               "tag_ap": dict(zip(manifest.labels["tags"], per_label_average_precision(outputs["tag_probs"], true_tags)))}
    metrics["confusion_pngs"] = save_confusions(outputs, clips, manifest, args.png_dir or args.json.parent)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return 0


def infer(version_dir: Path, manifest: EngineManifest, clips: ClipSet, batch: int) -> dict[str, np.ndarray]:
    engine = load_engine(version_dir, "onnxruntime")
    (policy,) = engine.sampling_policies
    frames = clips.frames.numpy()
    parts = [engine.infer({policy: frames[i:i + batch]}, [""] * len(frames[i:i + batch]))
             for i in tqdm(range(0, len(frames), batch), desc="ort")]
    engine.close()
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def aggregation_f1(outputs: dict[str, np.ndarray], true_tags: np.ndarray, manifest: EngineManifest) -> dict[str, float]:
    """Micro-F1 of the video tags each worker-side aggregation rule would publish."""
    labels = manifest.labels["tags"]
    defaults = manifest.serving.get("aggregation", {})
    scores = {}
    for rule_name in ("pooled_threshold", "frame_count", "top_n"):
        rule = AggregationRule(**{**defaults, "rule": rule_name})
        predicted = np.zeros_like(true_tags)
        for i in range(len(true_tags)):
            for label, _ in aggregate_tags(outputs["frame_tag_probs"][i], outputs["tag_probs"][i], labels, rule):
                predicted[i, labels.index(label)] = 1
        scores[f"tag_micro_f1_{rule_name}"] = micro_f1(predicted, true_tags)
    return scores


def save_confusions(outputs: dict[str, np.ndarray], clips: ClipSet, manifest: EngineManifest, out_dir: Path) -> list[str]:
    paths = []
    for head, truth in (("category", clips.category.numpy()), ("quality", clips.quality.numpy())):
        labels = manifest.labels[head]
        matrix = confusion(truth, outputs[f"{head}_probs"].argmax(1), len(labels))
        paths.append(str(save_confusion_png(matrix, labels, f"{head} ({manifest.ref})", out_dir / f"{head}_confusion.png")))
    return paths
