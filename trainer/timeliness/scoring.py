"""Accuracy, per-class recall and a confusion-matrix PNG (shared by the timeliness and early-action evaluators)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def summary(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    matrix = confusion(truth, predicted, len(labels))
    support = matrix.sum(axis=1)
    recall = {label: (float(matrix[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    return {"accuracy": float((truth == predicted).mean()) if len(truth) else 0.0, "clips": len(truth),
            "per_class_recall": recall, "confusion": matrix.tolist(), "labels": labels}


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(5, 4.5))
    axes.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
