"""Video tags from the classifier's per-frame and pooled tag scores (worker side, no torch).

Three rules, chosen per engine by ``manifest.serving["aggregation"]`` (overridable by settings):

- ``pooled_threshold``: tags whose pooled score is ≥ ``threshold``;
- ``frame_count``: tags present (frame score ≥ ``frame_threshold``) in ≥ ``min_frames`` frames;
- ``top_n``: the ``top_n`` tags seen in the most frames (ties broken by pooled score), at least one frame.

Every rule reports a tag with its pooled score, and the result is sorted by that score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class AggregationRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Literal["pooled_threshold", "top_n", "frame_count"] = "pooled_threshold"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    top_n: int = Field(default=3, ge=1)
    min_frames: int = Field(default=2, ge=1)
    frame_threshold: float = Field(default=0.5, ge=0.0, le=1.0)


def aggregate_tags(frame_tag_probs: np.ndarray, tag_probs: np.ndarray, labels: Sequence[str],
                   rule: AggregationRule) -> list[tuple[str, float]]:
    """``frame_tag_probs [T, n]`` and ``tag_probs [n]`` → ``[(label, pooled score)]``, best first."""
    frame_counts = (np.asarray(frame_tag_probs) >= rule.frame_threshold).sum(axis=0)
    pooled = np.asarray(tag_probs, dtype=np.float64)
    if rule.rule == "pooled_threshold":
        chosen = np.flatnonzero(pooled >= rule.threshold)
    elif rule.rule == "frame_count":
        chosen = np.flatnonzero(frame_counts >= rule.min_frames)
    else:
        ranked = np.lexsort((-pooled, -frame_counts))  # last key is primary: most frames first
        chosen = [j for j in ranked[: rule.top_n] if frame_counts[j] > 0]
    return sorted(((labels[j], float(pooled[j])) for j in chosen), key=lambda pair: -pair[1])
