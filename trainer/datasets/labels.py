"""Label sets of one training run, from the dataset's taxonomy or, without one, from its rows.

Every trainer and evaluator takes its label lists and output sizes from here (never from code), and
every row whose label is outside the label set is counted and reported, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trainer.datasets.format import Dataset, DatasetRow


@dataclass
class LabelSet:
    family: str
    labels: list[str]
    source: str  # "taxonomy" or "data"
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        counted = ", ".join(f"{label} ({self.counts.get(label, 0)})" for label in self.labels)
        return f"{self.family}: {len(self.labels)} labels from the {self.source}: {counted}"


def row_labels(row: DatasetRow, family: str) -> list[str]:
    """The labels a row carries for ``family`` (tags: the list; the others: a one-item list)."""
    value = getattr(row, family)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def label_set(dataset: Dataset, rows: Sequence[int], family: str) -> LabelSet | None:
    """The label set of ``family`` for the rows ``rows``; None when neither taxonomy nor rows have it."""
    counts = Counter(label for i in rows for label in row_labels(dataset.rows[i], family))
    fixed = dataset.taxonomy.labels(family) if dataset.taxonomy else None
    if fixed is not None:
        return LabelSet(family, list(fixed), "taxonomy", dict(counts))
    if not counts:
        return None
    return LabelSet(family, sorted(counts), "data", dict(counts))


@dataclass
class Coverage:
    """Which rows carry a usable label of one family; what was left out and why."""

    usable: list[int]
    outside: dict[str, int]  # label outside the set -> rows

    def report(self, family: str) -> list[str]:
        return [f"{family}: {rows} row(s) with label {label!r}, which is not in the label set: left out"
                for label, rows in sorted(self.outside.items())]


def coverage(dataset: Dataset, rows: Sequence[int], family: str, labels: Sequence[str]) -> Coverage:
    known = set(labels)
    usable, outside = [], Counter()
    for i in rows:
        carried = row_labels(dataset.rows[i], family)
        if not carried and getattr(dataset.rows[i], family) is None:
            continue
        bad = [label for label in carried if label not in known]
        outside.update(bad)
        if not bad:
            usable.append(i)
    return Coverage(usable, dict(outside))


def class_index(dataset: Dataset, rows: Sequence[int], family: str, labels: Sequence[str]) -> np.ndarray:
    """int64 [len(rows)]: the label's index, -1 where the row has none (or one outside ``labels``)."""
    position = {label: k for k, label in enumerate(labels)}
    out = np.full(len(rows), -1, np.int64)
    for j, i in enumerate(rows):
        value = getattr(dataset.rows[i], family)
        if value is not None and value in position:
            out[j] = position[value]
    return out


def multi_hot(dataset: Dataset, rows: Sequence[int], family: str, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [len(rows), K] targets, bool [len(rows)] row carries the family); unknown tags ignored."""
    position = {label: k for k, label in enumerate(labels)}
    targets = np.zeros((len(rows), len(labels)), np.float32)
    present = np.zeros(len(rows), bool)
    for j, i in enumerate(rows):
        value = getattr(dataset.rows[i], family)
        if value is None:
            continue
        present[j] = True
        for label in value:
            if label in position:
                targets[j, position[label]] = 1.0
    return targets, present
