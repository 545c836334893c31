"""The classifier's view of a dataset: its label sets (from the taxonomy or the data) and per-clip targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream_tagger.sampling import SamplingPolicy
from trainer.datasets.clips import ClipSet, ClipSource
from trainer.datasets.format import Dataset
from trainer.datasets.labels import class_index, coverage, label_set, multi_hot

#: The default input policy (``--frames``, ``--size``, ``--window-seconds`` change it).
POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


@dataclass
class ClassifierLabels:
    """The label list of each head; an empty list means the engine has no such head."""

    category: list[str]
    tags: list[str]
    quality: list[str]

    def manifest_labels(self) -> dict[str, list[str]]:
        return {family: labels for family, labels in
                (("category", self.category), ("tags", self.tags), ("quality", self.quality)) if labels}


def classifier_labels(dataset: Dataset, rows: Sequence[int], log=print) -> ClassifierLabels:
    """The label sets of the training rows; printed with their counts."""
    found = {}
    for family in ("category", "tags", "quality"):
        labels = label_set(dataset, rows, family)
        if labels is not None and not labels.counts:
            log(f"{family}: the taxonomy lists {len(labels.labels)} labels but no training row carries one: no head")
            labels = None
        if labels is not None:
            log(labels.describe())
        found[family] = labels.labels if labels else []
    return ClassifierLabels(found["category"], found["tags"], found["quality"])


def classifier_clips(dataset: Dataset, rows: Sequence[int], labels: ClassifierLabels, source: ClipSource,
                     truth: bool = False, log=print) -> ClipSet:
    """The rows that carry at least one usable label and decoded, with their targets.

    ``truth`` (evaluation) takes a row's ``clean_tags`` as its tags when it has them.
    """
    failed = getattr(source, "failed", {})
    for i in sorted(set(rows) & set(failed)):
        log(f"left out {dataset.rows[i].clip_id}: could not be decoded ({failed[i]})")
    rows = [i for i in rows if i not in failed]
    for family in ("category", "quality"):
        for line in coverage(dataset, rows, family, getattr(labels, family)).report(family) if getattr(labels, family) else []:
            log(line)
    category = class_index(dataset, rows, "category", labels.category)
    quality = class_index(dataset, rows, "quality", labels.quality)
    tags, has_tags = multi_hot(dataset, rows, "tags", labels.tags)
    if truth and labels.tags:
        clean, has_clean = multi_hot(dataset, rows, "clean_tags", labels.tags)
        tags, has_tags = np.where(has_clean[:, None], clean, tags), has_clean | has_tags
    usable = (category >= 0) | (quality >= 0) | has_tags
    if (~usable).any():
        log(f"left out {int((~usable).sum())} row(s) with no label of the classifier's heads")
    keep = np.flatnonzero(usable)
    return ClipSet(source, np.asarray(rows, np.int64)[keep],
                   {"category": category[keep], "quality": quality[keep], "tags": tags[keep],
                    "has_tags": has_tags[keep]})
