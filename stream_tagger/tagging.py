"""From an event to a tag record: open (URI policy) → decode once for every engine → infer → assemble.

``prepare`` runs in the decode pool (one event); ``infer`` runs on a batch in the inference thread.
Engines are swapped between batches only, so one batch never mixes versions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from stream_tagger.decode import DecodedClip, Decoder
from stream_tagger.engines import EngineRepository
from stream_tagger.errors import EngineFailed, EventError
from stream_tagger.events import SCHEMA_VERSION, InputEvent, utc_now
from stream_tagger.heads import ClassifierHead, EarlyActionHead, TimelinessHead
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.uri_policy import UriPolicy

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """One decoded event waiting for inference; ``marks`` are monotonic times of its stages."""

    event: InputEvent
    clip: DecodedClip
    marks: dict[str, float] = field(default_factory=dict)
    context: Any = None  # the caller's handle (e.g. where the message came from)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0

    def run(self, action: Callable[[], Any], sleep: Callable[[float], Any] = time.sleep) -> tuple[Any, int]:
        """Run ``action``; retry retryable EventErrors with exponential backoff. Returns (value, attempts)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return action(), attempt
            except EventError as exc:
                if not exc.retryable or attempt == self.attempts:
                    exc.attempts = attempt
                    raise
                sleep(min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")


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

    def _bind_engines(self) -> None:
        self.engines = self.repository.served
        self.policies: list[SamplingPolicy] = list(
            dict.fromkeys(e.manifest.sampling for e in self.engines.values())
        )
        self.heads = {
            "classifier": ClassifierHead(self.engines["classifier"]),
            "timeliness": TimelinessHead(self.engines["timeliness"]),
            "early_action": EarlyActionHead(self.engines["early_action"]),
        }
        self.engine_refs = {name: engine.ref for name, engine in self.engines.items()}

    def refresh_engines(self) -> list[str]:
        """Swap in versions loaded in the background (between batches only)."""
        swapped = self.repository.swap_parked()
        if swapped:
            self._bind_engines()
        return swapped

    def prepare(
        self, event: InputEvent, marks: dict[str, float], source_override: str | None = None
    ) -> Prepared:
        """Open and decode one event (decode pool thread). Raises EventError (with ``attempts``)."""
        marks["fetch"] = time.monotonic()
        source, _ = self.retry.run(lambda: source_override or self.uri_policy.open(event.uri))
        marks["decode"] = time.monotonic()
        clip, _ = self.retry.run(lambda: self.decoder.decode(source, self.policies))
        marks["decoded"] = time.monotonic()
        return Prepared(event, clip, marks)

    def infer(self, batch: list[Prepared]) -> list[dict[str, Any]]:
        """Run every engine on the batch and assemble one record per event. Raises EngineFailed."""
        started = time.monotonic()
        try:  # one stacked array per sampling policy: engines that share a policy share the array
            stacks = {p: np.stack([item.clip.frames[p] for item in batch]) for p in self.policies}
        except (KeyError, ValueError) as exc:  # decoded before an engine swap changed the policies
            raise EngineFailed(f"decoded frames do not fit the served engines: {exc}") from exc
        outputs = {name: self._run(name, batch, stacks) for name in self.engines}
        finished = time.monotonic()
        return [self._record(item, outputs, i, started, finished) for i, item in enumerate(batch)]

    def _run(
        self, name: str, batch: list[Prepared], stacks: dict[SamplingPolicy, np.ndarray]
    ) -> dict[str, np.ndarray]:
        engine = self.engines[name]
        feeds: dict[str, np.ndarray] = {"frames": stacks[engine.manifest.sampling]}
        if name == "timeliness":
            feeds.update(self.heads[name].feeds([item.event.title for item in batch]))
        feeds.update(engine.extra_feeds)
        try:
            return engine.runtime.infer(feeds)
        except EngineFailed:
            raise
        except Exception as exc:  # a runtime bug must DLQ the batch, not kill the worker
            raise EngineFailed(f"{engine.ref}: {exc}") from exc

    def _record(
        self, item: Prepared, outputs: dict, i: int, started: float, finished: float
    ) -> dict[str, Any]:
        record: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "video_id": item.event.video_id}
        for name, head in self.heads.items():
            record.update(head.fields(outputs[name], i))
        marks = item.marks
        record["engines"] = dict(self.engine_refs)
        record["decode"] = {
            "backend": item.clip.backend,
            "frames": item.clip.frames_decoded,
            "seconds_covered": item.clip.seconds_covered,
        }
        record["latency_ms"] = {
            "queue": _ms(marks["received"], marks["fetch"]),
            "decode": _ms(marks["decode"], marks["decoded"]),
            "infer": _ms(started, finished),
            "total": _ms(marks["received"], finished),
        }
        record["worker"] = self.worker_id
        record["tagged_at"] = utc_now()
        if item.event.trace_id:
            record["trace_id"] = item.event.trace_id
        return record


def _ms(start: float, end: float) -> float:
    return round(1000 * (end - start), 2)
