"""The accuracy guard: a bank is published only if it classifies the evaluation set about as well as before.

The evaluation clips are encoded once per session (their features do not depend on the bank), and a
bank is scored with the numpy twin of the graph's vote (``memory_bank.vote``), so judging a candidate
costs milliseconds. The reference is the better of two accuracies: the newest published version's,
and the chain's anchor (the accuracy before the first memory update, carried from version to version
in the manifest), so a stream that poisons a little in every batch cannot walk the bank down one
margin at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream_tagger.engines.memory_bank import MemoryBank, vote

#: Accuracies are fractions of a few dozen clips; equal ones must not differ by float noise.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Verdict:
    accuracy: float
    reference: float
    margin: float
    per_class: dict[str, float]

    @property
    def accepted(self) -> bool:
        return self.accuracy >= self.reference - self.margin - _TOLERANCE

    def describe(self) -> str:
        return (
            f"accuracy {self.accuracy:.4f} vs reference {self.reference:.4f} "
            f"(margin {self.margin:.4f}): {'accepted' if self.accepted else 'refused'}"
        )


class AccuracyGuard:
    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        classes: list[str],
        distance: str,
        margin: float,
        digest: str,
    ) -> None:
        self.features = features  # [n, T, dim]
        self.labels = labels  # [n] class indices
        self.classes = classes
        self.distance = distance
        self.margin = margin
        self.digest = digest

    def score(self, bank: MemoryBank) -> tuple[float, dict[str, float]]:
        """(accuracy, recall per class present in the set) of ``bank`` on the evaluation clips."""
        feeds = bank.feeds()
        _, shares = vote(
            self.features, feeds["memory_refs"], feeds["memory_labels"], len(self.classes), self.distance
        )
        right = shares.argmax(axis=1) == self.labels  # argmax: the graph's record takes the first maximum
        per_class = {
            self.classes[c]: round(float(right[self.labels == c].mean()), 4) for c in np.unique(self.labels)
        }
        return float(right.mean()), per_class

    def judge(self, candidate: MemoryBank, published: float, anchor: float) -> Verdict:
        accuracy, per_class = self.score(candidate)
        return Verdict(accuracy, max(published, anchor), self.margin, per_class)

    def anchor_of(self, manifest_metrics: dict[str, Any], published: float) -> float:
        """The chain's anchor from a version's manifest, when it was scored on this same set."""
        guard = manifest_metrics.get("memory_update", {}).get("guard", {})
        if guard.get("eval_set") == self.digest and isinstance(guard.get("anchor"), (int, float)):
            return float(guard["anchor"])
        return published

    def record(self, verdict: Verdict, anchor: float) -> dict[str, Any]:
        """What the published manifest says about the guard's decision."""
        return {
            "eval_set": self.digest,
            "eval_clips": len(self.labels),
            "accuracy": round(verdict.accuracy, 4),
            "reference": round(verdict.reference, 4),
            "anchor": anchor,
            "margin": self.margin,
            "per_class": verdict.per_class,
        }
