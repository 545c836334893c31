"""One generation of the memory writer: the newest early_action version, its encoder, its growing bank.

A session starts from the newest version (its bank, its encoder, the guard's evaluation features) and
collects added confirmations as *pending* until a publish. ``publish`` judges the bank, then publishes
it only while the version it grew from is still the newest (``if_latest``): a version published
meanwhile by someone else (a retrained engine, a rollback, another writer) ends the session instead,
and the writer re-reads the uncommitted confirmations onto the new newest version.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.engines.repository import NotLatest, list_versions
from stream_tagger.errors import ConfigError
from stream_tagger.feedback.features import ENGINE, FeatureTagger, eval_features, load_eval_set
from stream_tagger.feedback.guard import AccuracyGuard, Verdict
from stream_tagger.metrics import MemoryMetrics
from stream_tagger.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Published:
    version_dir: Path
    items: list[Any]
    verdict: Verdict


@dataclass
class Refused:
    items: list[Any]
    verdict: Verdict


@dataclass
class Moved:
    """The version the bank grew from is no longer the newest: nothing was published."""

    reason: str
    items: list[Any] = field(default_factory=list)


def newest_number(engines_root: Path) -> int | None:
    versions = list_versions(Path(engines_root) / ENGINE)
    return versions[-1][0] if versions else None


class MemorySession:
    def __init__(
        self,
        settings: Settings,
        metrics: MemoryMetrics,
        tagger: FeatureTagger,
        guard: AccuracyGuard,
        latest: int | None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tagger = tagger
        self.guard = guard
        #: The newest version number seen when this session started (or when it last published).
        self.latest = latest
        served = MemoryBank.load(tagger.engine.version_dir)
        self.published_accuracy, per_class = guard.score(served)
        self.anchor = guard.anchor_of(tagger.engine.manifest.metrics, self.published_accuracy)
        self.bank = self._bounded(served)
        #: The newest published bank, kept so that a refused batch reverts without reading a folder
        #: a rollback may have retired meanwhile.
        self._published = copy.deepcopy(self.bank)
        self.pending: list[Any] = []
        self._first_pending_at: float | None = None
        metrics.guard_accuracy.labels(bank="published").set(self.published_accuracy)
        self._show()
        log.info(
            "memory session",
            extra={
                "engine": tagger.engine.ref,
                "eval_accuracy": self.published_accuracy,
                "anchor": self.anchor,
                "per_class": per_class,
            },
        )

    @classmethod
    def open(cls, settings: Settings, metrics: MemoryMetrics) -> MemorySession:
        """The newest early_action version with its encoder and the guard's evaluation features."""
        if settings.memory_eval_set is None:
            raise ConfigError(
                "STREAM_TAGGER_MEMORY_EVAL_SET is required: the guard scores it before every publish"
            )
        eval_set = load_eval_set(settings.memory_eval_set)
        latest = newest_number(settings.engine_dir)
        tagger = FeatureTagger.for_memory(settings, metrics)
        try:
            features, labels = eval_features(tagger, eval_set, settings.batch_size)
            distance = tagger.engine.manifest.serving.get("distance", "euclidean")
            guard = AccuracyGuard(
                features, labels, tagger.labels, distance, settings.memory_guard_margin, eval_set.digest
            )
            return cls(settings, metrics, tagger, guard, latest)
        except BaseException:
            tagger.close()
            raise

    # ---- growing ---------------------------------------------------------------------------------
    def contains(self, key: str) -> bool:
        return self.bank.contains(key)

    def add(self, item: Any, features: np.ndarray, label: str, key: str) -> bool:
        """Add one confirmation's frame features; False (nothing changed) if its key is in the bank."""
        if not self.bank.add(features, label, key):
            return False
        self.pending.append(item)
        self._first_pending_at = self._first_pending_at or time.monotonic()
        self._show()
        return True

    def due(self, now: float) -> bool:
        if not self.pending:
            return False
        waited = now - (self._first_pending_at or now)
        return (
            len(self.pending) >= self.settings.memory_publish_every
            or waited >= self.settings.memory_publish_interval_s
        )

    # ---- publishing ------------------------------------------------------------------------------
    def publish(self) -> Published | Refused | Moved:
        """Judge the bank; publish it as a new version if accepted. Pending items leave the session."""
        items, parent = self.pending, self.bank.source_dir
        verdict = self.guard.judge(self.bank, self.published_accuracy, self.anchor)
        self.metrics.guard_accuracy.labels(bank="candidate").set(verdict.accuracy)
        if not verdict.accepted:
            self.revert()
            return Refused(items, verdict)
        try:
            metrics = {
                "memory_update": {
                    "parent": EngineManifest.load(parent).ref,
                    "added": len(items),
                    "examples": len(self.bank.example_keys),
                    "trainer_metrics_from": self._trainer_metrics_from(parent),
                    "guard": self.guard.record(verdict, self.anchor),
                }
            }
            version_dir = self.bank.publish(self.settings.engine_dir, metrics, if_latest=self.latest)
        except FileNotFoundError as exc:  # its folder (model, manifest) was retired by a rollback meanwhile
            self.pending, self._first_pending_at = [], None
            return Moved(f"the parent version is gone: {exc}", items)
        except NotLatest as exc:
            self.pending, self._first_pending_at = [], None
            return Moved(str(exc), items)
        self.latest, self.published_accuracy = int(version_dir.name), verdict.accuracy
        self._published = copy.deepcopy(self.bank)
        self.pending, self._first_pending_at = [], None
        self.metrics.guard_accuracy.labels(bank="published").set(verdict.accuracy)
        self._show()
        return Published(version_dir, items, verdict)

    def revert(self) -> list[Any]:
        """Forget the pending additions: the bank is the newest published one again."""
        dropped, self.pending, self._first_pending_at = self.pending, [], None
        self.bank = copy.deepcopy(self._published)
        self._show()
        return dropped

    def close(self) -> None:
        self.tagger.close()

    # ---- helpers ---------------------------------------------------------------------------------
    def _bounded(self, bank: MemoryBank) -> MemoryBank:
        bound = self.settings.memory_max_per_class
        if bound is not None:
            frames = self.tagger.policies[0].frames
            if bound < frames:
                raise ConfigError(f"memory_max_per_class={bound} is below one clip's {frames} frame vectors")
            bank.max_per_class = bound
            bank.evict()
        return bank

    @staticmethod
    def _trainer_metrics_from(parent: Path) -> str:
        """The version whose trainer-measured metrics the new manifest inherits (they are not re-measured)."""
        manifest = EngineManifest.load(parent)
        return manifest.metrics.get("memory_update", {}).get("trainer_metrics_from", manifest.ref)

    def _show(self) -> None:
        self.metrics.show_bank(self.bank.class_sizes(), len(self.pending))
