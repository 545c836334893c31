"""From an event to a tag record: open (URI policy) → decode once for every engine → infer → assemble.

``prepare`` runs in the decode pool (one event); ``infer`` runs on a batch in the inference thread.
Engines are swapped between batches only, so one batch never mixes versions.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import numpy as np

from stream_tagger.decode import Decoder, make_decoder
from stream_tagger.engines.record_fields import RecordFields, record_fields
from stream_tagger.engines.repository import EngineRepository, LoadedEngine
from stream_tagger.errors import EngineFailed
from stream_tagger.metrics import Metrics
from stream_tagger.records import InputEvent, Prepared, StageTimes, tag_record
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.settings import Settings
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy

M = TypeVar("M")


class Tagger:
    def __init__(
        self,
        repository: EngineRepository,
        decoder: Decoder,
        uri_policy: UriPolicy,
        retry: RetryPolicy,
        worker_id: str,
    ) -> None:
        self.repository = repository
        self.decoder = decoder
        self.uri_policy = uri_policy
        self.retry = retry
        self.worker_id = worker_id
        self._bind_engines()

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> "Tagger":
        """Load the engines (the best version of each) and build the tagger; metrics follow every swap."""

        def served(new: LoadedEngine, old: LoadedEngine | None) -> None:
            previous = old.manifest.version if old is not None else None
            metrics.show_engine(new.name, new.manifest.version, new.runtime.backend, previous)

        repository = EngineRepository(
            settings.engine_dir,
            settings.backend,
            settings.ort_threads,
            on_change=served,
            on_failure=lambda engine, path, exc: metrics.engine_refused.labels(engine=engine).inc(),
            check=record_fields,
        )
        repository.load()
        retry = RetryPolicy(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)
        decoder = make_decoder(settings.decoder, settings.decode_limits())
        return cls(repository, decoder, UriPolicy.from_settings(settings), retry, settings.worker_id)

    def _bind_engines(self) -> None:
        self.engines = self.repository.served
        self.policies: list[SamplingPolicy] = list(
            dict.fromkeys(p for engine in self.engines.values() for p in engine.sampling_policies)
        )
        self.fields: dict[str, RecordFields] = {name: record_fields(e) for name, e in self.engines.items()}
        self.engine_refs = {name: engine.ref for name, engine in self.engines.items()}

    def refresh_engines(self) -> list[str]:
        """Swap in versions the watcher prepared (between batches only)."""
        swapped = self.repository.swap_parked()
        if swapped:
            self._bind_engines()
        return swapped

    def prepare(self, event: InputEvent, message: M, times: StageTimes, source: Any = None) -> Prepared[M]:
        """Open and decode one event (decode pool thread). Raises EventError (with ``attempts``)."""
        times.fetch = time.monotonic()
        if source is None:
            source, _ = self.retry.run(lambda: self.uri_policy.open(event.uri))
        times.decode = time.monotonic()
        clip, _ = self.retry.run(lambda: self.decoder.decode(source, self.policies))
        times.decoded = time.monotonic()
        return Prepared(event, clip, times, message)

    def infer(self, batch: list[Prepared[M]]) -> list[dict[str, Any]]:
        """Run every engine on the batch and assemble one record per event. Raises EngineFailed."""
        started = time.monotonic()
        try:  # one stacked array per sampling policy: engines that share a policy share the array
            frames = {p: np.stack([item.clip.frames[p] for item in batch]) for p in self.policies}
        except (KeyError, ValueError) as exc:  # decoded before an engine swap changed the policies
            raise EngineFailed(f"decoded frames do not fit the served engines: {exc}") from exc
        titles = [item.event.title for item in batch]
        outputs = {name: self._run(engine, frames, titles) for name, engine in self.engines.items()}
        finished = time.monotonic()
        records = []
        for i, item in enumerate(batch):
            fields: dict[str, Any] = {}
            for name, builder in self.fields.items():
                fields.update(builder.fields(outputs[name], i))
            records.append(tag_record(item, fields, self.engine_refs, started, finished, self.worker_id))
        return records

    @staticmethod
    def _run(engine: LoadedEngine, frames: dict[SamplingPolicy, np.ndarray], titles: list[str]) -> dict:
        try:
            return engine.infer(frames, titles)
        except EngineFailed:
            raise
        except Exception as exc:  # a runtime bug must DLQ the batch, not kill the worker
            raise EngineFailed(f"{engine.ref}: {exc}") from exc

    def close(self) -> None:
        self.repository.close()
        self.decoder.close()
