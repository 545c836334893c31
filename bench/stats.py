"""Repetition summaries: every figure is reported as a median with its spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summarise(values: Sequence[float], digits: int = 4) -> dict:
    """Median, min, max and relative spread ((max - min) / median) of repeated measurements."""
    ordered = sorted(values)
    median = statistics.median(ordered)
    spread = (ordered[-1] - ordered[0]) / median if median else 0.0
    return {
        "median": round(median, digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
        "spread": round(spread, 3),
        "values": [round(v, digits) for v in values],
    }


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict:
    """Nearest-rank percentiles (no interpolation: with few samples p99 is the honest max)."""
    ordered = sorted(values)
    out = {}
    for point in points:
        rank = max(1, -(-point * len(ordered) // 100))  # ceil without floats
        out[f"p{point}"] = round(ordered[rank - 1], 2)
    return out


def ratio(numerator: dict | None, denominator: dict | None) -> float | None:
    """Ratio of two summaries' medians, or None when either was not measured."""
    if not numerator or not denominator or not denominator.get("median"):
        return None
    return round(numerator["median"] / denominator["median"], 3)
