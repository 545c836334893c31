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


def paired_by_round(worker: list[float], by_mode: dict[str, list[float]]) -> dict:
    """The ratios taken inside each round (worker repetition i against the bound's repetitions i, which
    ran right after it), then their median over the rounds.

    The machine drifts over a run: in one run every mode rose ~20 % between the second and the fourth
    round. A ratio of medians lets that drift fall unevenly on the two sides; a round's own ratio
    cancels what hits the whole round.
    """
    rounds = min([len(worker), *(len(values) for values in by_mode.values())])
    best = {label: [max(values[i] for name, values in by_mode.items() if name.startswith(label)) for i in range(rounds)]
            for label in ("served", "today")}
    worker_over_bound = [round(worker[i] / best["served"][i], 3) for i in range(rounds)]
    served_over_today = [round(best["served"][i] / best["today"][i], 3) for i in range(rounds)]
    return {"rounds": rounds,
            "worker_over_decode_bound": summarise(worker_over_bound),
            "served_over_today": summarise(served_over_today)}
