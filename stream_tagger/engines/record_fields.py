"""How each engine's outputs become fields of the tag record (DESIGN §2).

An engine serves the outputs its manifest lists, and a record carries the fields of those outputs
only: a classifier trained without tags has no ``tags`` field. Building the fields object checks the
manifest (each output's width against its label list), so a version that disagrees with itself is
refused before it is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from stream_tagger.aggregation import AggregationRule, aggregate_tags
from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import LoadedEngine
from stream_tagger.errors import ConfigError


class RecordFields(Protocol):
    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]: ...


def _top(probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    index = int(np.argmax(probs))
    return {"label": labels[index], "score": round(float(probs[index]), 4)}


def _checked_labels(manifest: EngineManifest, output: str, family: str) -> list[str] | None:
    """The labels of ``output`` when the engine has it; ConfigError if its width disagrees."""
    spec = next((s for s in manifest.outputs if s.name == output), None)
    if spec is None:
        return None
    labels = manifest.labels.get(family)
    if not labels:
        raise ConfigError(f"{manifest.ref}: output {output} has no labels[{family!r}]")
    width = spec.shape[-1]
    if isinstance(width, int) and width != len(labels):
        raise ConfigError(f"{manifest.ref}: {output} has {width} columns but {len(labels)} {family} labels")
    return labels


class ClassifierFields:
    """category, tags (frame-tag aggregation by the manifest's rule) and quality, as trained."""

    def __init__(self, manifest: EngineManifest) -> None:
        self.category = _checked_labels(manifest, "category_probs", "category")
        self.tags = _checked_labels(manifest, "tag_probs", "tags")
        self.quality = _checked_labels(manifest, "quality_probs", "quality")
        self.per_frame_tags = "frame_tag_probs" in manifest.output_names
        self.rule = AggregationRule(**manifest.serving.get("aggregation", {}))
        if self.tags and not self.per_frame_tags and self.rule.rule != "pooled_threshold":
            raise ConfigError(f"{manifest.ref}: rule {self.rule.rule} needs the frame_tag_probs output")

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.category:
            record["category"] = _top(out["category_probs"][i], self.category)
        if self.tags:
            pooled = out["tag_probs"][i]
            per_frame = out["frame_tag_probs"][i] if self.per_frame_tags else pooled[None]
            tags = aggregate_tags(per_frame, pooled, self.tags, self.rule)
            record["tags"] = [{"label": label, "score": round(float(score), 4)} for label, score in tags]
        if self.quality:
            record["quality"] = _top(out["quality_probs"][i], self.quality)
        return record


class TimelinessFields:
    """timeliness label + ttl_hours."""

    def __init__(self, manifest: EngineManifest) -> None:
        self.labels = _checked_labels(manifest, "timeliness_probs", "timeliness")
        if self.labels is None:
            raise ConfigError(f"{manifest.ref}: a timeliness engine needs the timeliness_probs output")
        self.ttl_hours = manifest.serving.get("ttl_hours", {})

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        top = _top(out["timeliness_probs"][i], self.labels)
        return {"timeliness": {**top, "ttl_hours": int(self.ttl_hours.get(top["label"], 0))}}


class EarlyActionFields:
    """The action, with the frames' vote counts when the graph reports them."""

    def __init__(self, manifest: EngineManifest) -> None:
        self.labels = _checked_labels(manifest, "action_probs", "early_action")
        if self.labels is None:
            raise ConfigError(f"{manifest.ref}: an early_action engine needs the action_probs output")
        self.votes = "frame_votes" in manifest.output_names

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        fields = _top(out["action_probs"][i], self.labels)
        if self.votes:
            frame_votes = out["frame_votes"][i].astype(np.int64).clip(0, len(self.labels) - 1)
            counts = np.bincount(frame_votes, minlength=len(self.labels))
            order = sorted(range(len(self.labels)), key=lambda k: -counts[k])
            fields["frames_used"] = len(frame_votes)
            fields["votes"] = {self.labels[k]: int(counts[k]) for k in order if counts[k] > 0}
        return {"early_action": fields}


_FIELDS = {"classifier": ClassifierFields, "timeliness": TimelinessFields, "early_action": EarlyActionFields}


def record_fields(engine: LoadedEngine) -> RecordFields:
    """The record-field builder of ``engine``; ConfigError when its manifest is inconsistent."""
    return _FIELDS[engine.name](engine.manifest)
