"""Evaluation metrics in plain numpy (shared by training's held-out report and ``evaluate``)."""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision/recall steps for one label (NaN without positives)."""
    if truth.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = truth[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def per_label_average_precision(scores: np.ndarray, truth: np.ndarray) -> list[float]:
    """AP of each label column of ``[N, labels]`` scores (NaN where a label has no positive)."""
    return [average_precision(scores[:, j], truth[:, j]) for j in range(truth.shape[1])]


def mean_average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Macro mean of per-label AP over labels that have at least one positive."""
    return float(np.nanmean(per_label_average_precision(scores, truth)))


def micro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    true_positive = float((predicted * truth).sum())
    denominator = float(predicted.sum() + truth.sum())
    return 2 * true_positive / denominator if denominator else 1.0


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def classifier_metrics(outputs: dict[str, np.ndarray], category: np.ndarray, true_tags: np.ndarray,
                       quality: np.ndarray, tag_threshold: float = 0.5) -> dict[str, float]:
    """The issue's numbers from the four output heads (probabilities) and the true labels."""
    return {"category_accuracy": float((outputs["category_probs"].argmax(1) == category).mean()),
            "tag_map": mean_average_precision(outputs["tag_probs"], true_tags),
            "tag_micro_f1": micro_f1((outputs["tag_probs"] >= tag_threshold).astype(np.float64), true_tags),
            "quality_accuracy": float((outputs["quality_probs"].argmax(1) == quality).mean())}
