"""``stream-tagger-train evaluate early_action``: accuracy of an engine (ONNX Runtime + its memory bank),
and accuracy as a function of the early window P (frames decoded with a policy whose ``fraction`` is P)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stream_tagger.engines.repository import LoadedEngine, load_engine
from stream_tagger.sampling import SamplingPolicy
from trainer.datasets.format import Dataset
from trainer.datasets.views import FramesView, cached_view
from trainer.single_label import SingleLabels, single_label_clips
from trainer.timeliness.scoring import plot_confusion, summary

FRACTIONS = (0.02, 0.05, 0.10, 0.20)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (clean labels)")
    parser.add_argument("--engine", type=Path, required=True, help="engine version dir, e.g. engines/early_action/1")
    parser.add_argument("--json", type=Path, required=True, help="where to write the metrics")
    parser.add_argument("--results", type=Path, help="folder for PNGs (default: the folder of --json)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))


def predict(engine: LoadedEngine, dataset: Dataset, rows: list[int], labels: SingleLabels,
            policy: SamplingPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted classes) of the clips decoded with ``policy``, fed the way the worker feeds them."""
    served = engine.sampling_policies[0]
    clips = single_label_clips(dataset, rows, labels, cached_view(dataset, FramesView(policy)))
    shares = []
    for start in range(0, len(clips), 64):
        frames = clips.inputs(range(start, min(start + 64, len(clips))))
        shares.append(engine.infer({served: frames}, [""] * len(frames))["action_probs"])
    return clips.targets["label"], np.concatenate(shares).argmax(1)


def run(args: argparse.Namespace) -> int:
    engine = load_engine(args.engine, "onnxruntime")
    manifest, (served,) = engine.manifest, engine.sampling_policies
    labels = list(manifest.labels["early_action"])
    dataset = Dataset.load(args.data)
    rows, family = dataset.split_rows("eval"), SingleLabels("early_action", labels)
    report = summary(*predict(engine, dataset, rows, family, served), labels)
    by_fraction = {}
    for fraction in args.fractions:
        policy = served.model_copy(update={"fraction": fraction, "seconds": None})
        truth, predicted = predict(engine, dataset, rows, family, policy)
        by_fraction[f"{fraction:g}"] = float((predicted == truth).mean())
    engine.close()
    report.update(engine=manifest.ref, data=str(args.data), trained_fraction=served.fraction,
                  accuracy_by_fraction=by_fraction)
    pngs = args.results or args.json.parent
    plot_confusion(np.asarray(report["confusion"]), labels, f"early action {manifest.ref}", pngs / "confusion.png")
    plot_fractions(by_fraction, pngs / "accuracy_by_fraction.png")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print("| P (% of clip) | accuracy |\n|---|---|")
    for fraction, accuracy in by_fraction.items():
        print(f"| {float(fraction) * 100:g} | {accuracy:.3f} |")
    print(json.dumps({"accuracy": report["accuracy"], "per_class_recall": report["per_class_recall"]}))
    return 0


def plot_fractions(by_fraction: dict[str, float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    axes.plot([float(f) * 100 for f in by_fraction], list(by_fraction.values()), marker="o")
    axes.set_xlabel("early window P (% of the clip)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
