"""How each engine is fed and how its outputs become fields of the tag record (DESIGN §2)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from stream_tagger.engines import LoadedEngine


def _top(probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    index = int(np.argmax(probs))
    return {"label": labels[index], "score": round(float(probs[index]), 4)}


class ClassifierHead:
    """category, tags (frame-tag aggregation by the manifest's rule) and quality."""

    def __init__(self, engine: LoadedEngine) -> None:
        from stream_tagger.aggregation import AggregationRule

        self.labels = engine.manifest.labels
        self.rule = AggregationRule(**engine.manifest.serving.get("aggregation", {}))

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        from stream_tagger.aggregation import aggregate_tags

        tags = aggregate_tags(out["frame_tag_probs"][i], out["tag_probs"][i], self.labels["tags"], self.rule)
        return {
            "category": _top(out["category_probs"][i], self.labels["category"]),
            "tags": [{"label": label, "score": round(float(score), 4)} for label, score in tags],
            "quality": _top(out["quality_probs"][i], self.labels["quality"]),
        }


class TimelinessHead:
    """timeliness label + ttl_hours; the title is tokenised with the engine's own tokenizer config."""

    def __init__(self, engine: LoadedEngine) -> None:
        from stream_tagger.text import HashedTokenizer

        self.labels = engine.manifest.labels["timeliness"]
        self.tokenizer = HashedTokenizer.from_config(engine.manifest.serving.get("tokenizer", {}))
        self.ttl_hours = engine.manifest.serving.get("ttl_hours", {})

    def feeds(self, titles: Sequence[str]) -> dict[str, np.ndarray]:
        return {"title_ids": np.stack([self.tokenizer.encode(title) for title in titles]).astype(np.int64)}

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        top = _top(out["timeliness_probs"][i], self.labels)
        return {"timeliness": {**top, "ttl_hours": int(self.ttl_hours.get(top["label"], 0))}}


class EarlyActionHead:
    """The majority vote of the frames, with the vote counts."""

    def __init__(self, engine: LoadedEngine) -> None:
        self.labels = engine.manifest.labels["early_action"]

    def fields(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        votes = np.bincount(
            out["frame_votes"][i].astype(np.int64).clip(0, len(self.labels) - 1), minlength=len(self.labels)
        )
        counts = {self.labels[k]: int(n) for k, n in sorted(enumerate(votes), key=lambda kv: -kv[1]) if n > 0}
        return {
            "early_action": {
                **_top(out["action_probs"][i], self.labels),
                "frames_used": int(out["frame_votes"].shape[1]),
                "votes": counts,
            }
        }
