"""A clip's frame features from the served encoder, and the evaluation set the guard scores.

Features are re-computed by the writer from the confirmation's ``uri``, not published by the workers:
the writer runs the worker's own Tagger (URI policy, fetch and decode limits, retries, decoder) on the
early_action engine alone, so the frames are sampled by the engine's own policy and encoded by the
version the bank will be published beside. Workers stay as they are (no features on the tag topic,
no coupling of the tag record to one engine's internals), and a confirmation that arrives days after
tagging, or for a video tagged by an older encoder, still gets features of the current encoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from stream_tagger.engines.repository import LoadedEngine
from stream_tagger.errors import ConfigError, EngineFailed, EventError
from stream_tagger.metrics import Metrics
from stream_tagger.records import InputEvent, Prepared, StageTimes
from stream_tagger.settings import Settings
from stream_tagger.tagger import Tagger

ENGINE = "early_action"
FEATURES_OUTPUT = "features"


class FeatureTagger(Tagger):
    """The worker's Tagger on the early_action engine alone; ``infer`` returns frame features."""

    @classmethod
    def for_memory(cls, settings: Settings, metrics: Metrics) -> FeatureTagger:
        """The newest early_action version that loads and passes its probe, with the worker's limits."""
        tagger = cls.from_settings(settings, metrics, engines=(ENGINE,))
        if ENGINE not in tagger.engines:
            tagger.close()
            raise ConfigError(f"no early_action version under {settings.engine_dir}")
        if FEATURES_OUTPUT not in tagger.engine.manifest.output_names:
            tagger.close()
            raise ConfigError(
                f"{tagger.engine.ref} has no {FEATURES_OUTPUT!r} output to grow its memory with"
            )
        return tagger

    @property
    def engine(self) -> LoadedEngine:
        return self.engines[ENGINE]

    @property
    def labels(self) -> list[str]:
        return self.engine.manifest.labels[ENGINE]

    def refresh_engines(self) -> list[str]:
        return []  # the writer replaces the whole session on a new version, never the engine under it

    def infer(self, batch: list[Prepared[Any]]) -> list[dict[str, Any]]:
        """One ``{"features": [T, dim]}`` per clip. Raises EngineFailed."""
        frames = {p: np.stack([item.clip.frames[p] for item in batch]) for p in self.policies}
        outputs = self._run(self.engine, frames, [item.event.title for item in batch])
        return [{"features": np.asarray(outputs[FEATURES_OUTPUT][i], np.float32)} for i in range(len(batch))]


@dataclass(frozen=True)
class EvalSet:
    """Labelled clips (local files) the guard scores; ``digest`` names its content."""

    files: tuple[Path, ...]
    labels: tuple[str, ...]

    @property
    def digest(self) -> str:
        rows = json.dumps([[str(f), label] for f, label in zip(self.files, self.labels)])
        return "sha256:" + hashlib.sha256(rows.encode()).hexdigest()[:16]


def load_eval_set(path: Path) -> EvalSet:
    """A dataset folder (``manifest.jsonl``: ``file`` + ``early_action``) or a JSONL of ``uri`` + ``label``.

    Clips are configuration, read from local files like the engines (file:// URIs or paths).
    """
    path = Path(path)
    manifest = path / "manifest.jsonl" if path.is_dir() else path
    if not manifest.is_file():
        raise ConfigError(f"memory_eval_set {path}: no such dataset folder (manifest.jsonl) or JSONL file")
    files, labels = [], []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            label = row.get("early_action", row.get("label"))
            where = row.get("file") or row["uri"]
        except (ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(
                f"{manifest}:{number}: expected a JSON object with file|uri and a label"
            ) from exc
        if label is None:  # a dataset row without an early_action label trains other engines only
            continue
        files.append(_local_file(where, manifest.parent))
        labels.append(str(label))
    if not files:
        raise ConfigError(f"{manifest}: no clip with an early_action label")
    return EvalSet(tuple(files), tuple(labels))


def _local_file(where: str, base: Path) -> Path:
    parts = urlsplit(where)
    if parts.scheme not in ("", "file"):
        raise ConfigError(f"evaluation clip {where!r}: only local files (file:// or a path) are read")
    path = Path(unquote(parts.path)) if parts.scheme else Path(where)
    return path if path.is_absolute() else base / path


def eval_features(tagger: FeatureTagger, eval_set: EvalSet, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, T, dim], label indices [n]) of the evaluation clips; ConfigError on any bad clip."""
    labels = tagger.labels
    unknown = sorted(set(eval_set.labels) - set(labels))
    if unknown:
        raise ConfigError(f"evaluation set labels {unknown} are not the engine's labels {labels}")
    features: list[np.ndarray] = []
    for start in range(0, len(eval_set.files), batch_size):
        batch = []
        for file in eval_set.files[start : start + batch_size]:
            event = InputEvent(video_id=f"eval:{file.name}", uri=file.as_uri())
            try:
                batch.append(tagger.prepare(event, None, StageTimes(), source=str(file)))
            except EventError as exc:
                raise ConfigError(f"evaluation clip {file}: {exc.code}: {exc}") from exc
        try:
            features.extend(result["features"] for result in tagger.infer(batch))
        except EngineFailed as exc:
            raise ConfigError(f"evaluation set: {exc}") from exc
    return np.stack(features), np.array([labels.index(label) for label in eval_set.labels], np.int64)
