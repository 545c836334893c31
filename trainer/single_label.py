"""Label set and targets of a one-label-per-clip engine (timeliness, early action).

The label list comes from the taxonomy or, without one, from the training rows (printed with counts);
timeliness TTLs from the taxonomy, else from the rows' ``ttl_hours`` field when every row of a class
agrees, else 0 with a line saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trainer.datasets.clips import ClipSet, ClipSource
from trainer.datasets.format import Dataset, DatasetError, held_out
from trainer.datasets.labels import class_index, coverage, label_set
from trainer.datasets.views import cached_view


@dataclass
class SingleLabels:
    family: str
    labels: list[str]
    ttl_hours: dict[str, int] = field(default_factory=dict)


def single_label_set(dataset: Dataset, rows: Sequence[int], family: str, log=print) -> SingleLabels | None:
    found = label_set(dataset, rows, family)
    if found is None or not found.counts:
        return None
    log(found.describe())
    labels = SingleLabels(family, list(found.labels))
    if family == "timeliness":
        labels.ttl_hours = _ttl_hours(dataset, rows, labels.labels, log)
    return labels


def _ttl_hours(dataset: Dataset, rows: Sequence[int], labels: list[str], log) -> dict[str, int]:
    if dataset.taxonomy and dataset.taxonomy.timeliness:
        return dataset.taxonomy.ttl_hours()
    seen: dict[str, set] = {label: set() for label in labels}
    for i in rows:
        row = dataset.rows[i]
        ttl = (row.model_extra or {}).get("ttl_hours")
        if row.timeliness in seen and isinstance(ttl, int):
            seen[row.timeliness].add(ttl)
    ttl_hours = {}
    for label, values in seen.items():
        ttl_hours[label] = values.pop() if len(values) == 1 else 0
        if not ttl_hours[label]:
            log(f"timeliness {label!r}: no taxonomy ttl_hours and no single ttl_hours in the rows: records say 0")
    return ttl_hours


def single_label_clips(dataset: Dataset, rows: Sequence[int], labels: SingleLabels, source: ClipSource,
                       log=print) -> ClipSet:
    """The rows that carry a label of the set and decoded, with target ``label`` (class index)."""
    failed = getattr(source, "failed", {})
    for i in sorted(set(rows) & set(failed)):
        log(f"left out {dataset.rows[i].clip_id}: could not be decoded ({failed[i]})")
    rows = [i for i in rows if i not in failed]
    for line in coverage(dataset, rows, labels.family, labels.labels).report(labels.family):
        log(line)
    index = class_index(dataset, rows, labels.family, labels.labels)
    keep = np.flatnonzero(index >= 0)
    return ClipSet(source, np.asarray(rows, np.int64)[keep], {"label": index[keep]})


def training_and_held_out(data, eval_data, family: str, view, ctx):
    """The dataset, label set and training clips of ``family``, and the held-out rows and clips (None, None
    without any), every clip through ``view``'s cache on this rank."""
    dataset = Dataset.load(data)
    labels = single_label_set(dataset, dataset.split_rows("train"), family, ctx.log)
    if labels is None:
        raise DatasetError(f"{data}: no training row carries a {family} label")
    train = single_label_clips(dataset, dataset.split_rows("train"), labels,
                               cached_view(dataset, view, ctx.rank, ctx.world, ctx.log), ctx.log)
    held = held_out(dataset, eval_data)
    if held is None:
        return dataset, labels, train, None, None
    evaluation = single_label_clips(held[0], held[1], labels, cached_view(held[0], view, ctx.rank, ctx.world, ctx.log),
                                    ctx.log)
    return dataset, labels, train, held, evaluation
