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
    values = per_label_average_precision(scores, truth)
    return float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")


def micro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    true_positive = float((predicted * truth).sum())
    denominator = float(predicted.sum() + truth.sum())
    return 2 * true_positive / denominator if denominator else 1.0


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def classifier_metrics(outputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                       tag_threshold: float = 0.5) -> dict[str, float]:
    """The held-out numbers of the heads the engine has, each over the clips that carry that label."""
    metrics: dict[str, float] = {}
    category = targets["category"] >= 0
    if "category_probs" in outputs and category.any():
        metrics["category_accuracy"] = float((outputs["category_probs"][category].argmax(1)
                                              == targets["category"][category]).mean())
        metrics["category_clips"] = int(category.sum())
    tagged = targets["has_tags"]
    if "tag_probs" in outputs and tagged.any():
        scores, truth = outputs["tag_probs"][tagged], targets["tags"][tagged]
        metrics["tag_map"] = mean_average_precision(scores, truth)
        metrics["tag_micro_f1"] = micro_f1((scores >= tag_threshold).astype(np.float64), truth)
        metrics["tag_clips"] = int(tagged.sum())
    graded = targets["quality"] >= 0
    if "quality_probs" in outputs and graded.any():
        metrics["quality_accuracy"] = float((outputs["quality_probs"][graded].argmax(1)
                                             == targets["quality"][graded]).mean())
        metrics["quality_clips"] = int(graded.sum())
    return metrics
