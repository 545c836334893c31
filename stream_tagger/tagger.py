"""From an event to a tag record: open (URI policy) → decode once for every engine → infer → assemble.

``prepare`` runs in the decode pool (one event); ``infer`` runs on a batch in the inference thread.
Engines are swapped between batches only, so one batch never mixes versions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from stream_tagger.decode import Decoder, make_decoder
from stream_tagger.decode_stage import DecodeProcesses, fetch_and_decode
from stream_tagger.engines.manifest import ENGINE_NAMES
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
        processes: DecodeProcesses | None = None,
    ) -> None:
        self.repository = repository
        self.decoder = decoder
        self.uri_policy = uri_policy
        self.retry = retry
        self.worker_id = worker_id
        #: When set, events are fetched and decoded in these child processes (``decode_stage``).
        self.processes = processes
        self._bind_engines()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        metrics: Metrics,
        engines: Sequence[str] = ENGINE_NAMES,
        decode_processes: bool | None = None,
    ) -> Tagger:
        """Load the engines (the best version of each) and build the tagger; metrics follow every swap.

        ``decode_processes`` (default: ``settings.decode_in_processes``, pyav only) starts one decode
        process per decode worker.
        """

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
            engines=engines,
        )
        repository.load()
        retry = RetryPolicy(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)
        decoder = make_decoder(settings.decoder, settings.decode_limits())
        policy = UriPolicy.from_settings(settings, on_close=metrics.observe_fetch)
        in_processes = settings.decode_in_processes if decode_processes is None else decode_processes
        processes = None
        if in_processes and settings.decoder == "pyav":
            processes = DecodeProcesses(settings, settings.decode_workers, on_fetch=metrics.observe_fetch)
        return cls(repository, decoder, policy, retry, settings.worker_id, processes)

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
        """Fetch and decode one event (decode pool thread), both retried together. Raises EventError
        (with ``attempts``). ``source`` (an open file or a path) replaces fetching ``event.uri``."""
        times.fetch = time.monotonic()
        if source is not None:
            times.decode = times.fetch
            clip, _ = self.retry.run(lambda: self.decoder.decode(source, self.policies))
        elif self.processes is not None:  # the same stage, retries included, in a decode process
            clip = self.processes.read(event.uri, self.policies, times)
        else:
            clip, _ = self.retry.run(lambda: fetch_and_decode(self.uri_policy, self.decoder, event.uri, self.policies, times))
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

    def check_decoding(self) -> None:
        """Raise DecodeProcessDied when a decode process has exited (nothing to check in-process)."""
        if self.processes is not None:
            self.processes.check()

    def close(self) -> None:
        self.repository.close()
        self.decoder.close()
        if self.processes is not None:
            self.processes.close()
