"""The decode → batch → infer pipeline of the worker, apart from where messages come from.

``submit(message, raw)`` hands one message to the decode threads; decoded events queue for the
inference thread, which batches them (max size / max wait), runs the engines and hands each result to
``on_tagged`` or ``on_failed``. Every event ends in exactly one of the two callbacks. Decoding of the
next events overlaps inference of the current batch. When the tagger decodes in processes
(``decode_stage.DecodeProcesses``), each decode thread waits on its own child, off the GIL.

The decode threads are daemon threads fed by a queue (not a ThreadPoolExecutor, whose threads the
interpreter joins at exit): an input that holds a thread past every deadline cannot hold up a
shutdown, and its event, never finished, is simply redelivered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from stream_tagger.batcher import Batcher
from stream_tagger.decode_stage import IDLE_CHECK_S
from stream_tagger.errors import DecodeFailed, DecodeProcessDied, EngineFailed, EventError, TooLarge
from stream_tagger.metrics import Metrics
from stream_tagger.records import Prepared, StageTimes, parse_event
from stream_tagger.settings import Settings
from stream_tagger.supervision import OnFatal, start_supervised
from stream_tagger.tagger import Tagger

log = logging.getLogger(__name__)

M = TypeVar("M")
_STOP = object()


class Pipeline(Generic[M]):
    def __init__(
        self,
        tagger: Tagger,
        settings: Settings,
        metrics: Metrics,
        on_tagged: Callable[[Prepared[M], dict[str, Any]], None],
        on_failed: Callable[[M, EventError], None],
        on_fatal: OnFatal,
    ) -> None:
        self.tagger = tagger
        self.settings = settings
        self.metrics = metrics
        self._on_tagged = on_tagged
        self._on_failed = on_failed
        self._on_fatal = on_fatal
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._decoded: queue.Queue[Prepared[M]] = queue.Queue(maxsize=2 * settings.max_inflight)
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Pipeline[M]:
        for index in range(self.settings.decode_workers):
            self._threads.append(start_supervised(f"decode-{index}", self._decode_loop, self.metrics, self._on_fatal))
        self._threads.append(start_supervised("inference", self._inference_loop, self.metrics, self._on_fatal))
        return self

    def submit(self, message: M, raw: bytes | None) -> None:
        self._tasks.put((message, raw, StageTimes()))

    def close(self) -> None:
        """Stop the threads without waiting for inputs that are still being read (they are redelivered)."""
        self._closed.set()
        for _ in range(self.settings.decode_workers):
            self._tasks.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=0.5)

    # ---- decode threads --------------------------------------------------------------------------
    def _decode_loop(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=IDLE_CHECK_S)
            except queue.Empty:  # idle: a decode process that died meanwhile must not wait for an event
                self.tagger.check_decoding()
                continue
            if task is _STOP or self._closed.is_set():
                return
            message, raw, times = task
            try:
                prepared = self._prepare(message, raw, times)
            except EventError as exc:
                self._on_failed(message, exc)
                continue
            except DecodeProcessDied:  # like a dead thread: fatal (supervision), the event is redelivered
                raise
            except Exception as exc:  # a bug on one input: its event gets a DLQ record, the thread goes on
                log.exception("unexpected decode-stage failure")
                self.metrics.unexpected_errors.labels(stage="decode").inc()
                self._on_failed(message, DecodeFailed(f"unexpected: {type(exc).__name__}: {exc}"))
                continue
            self._observe(times)
            self.metrics.decode_frames.labels(backend=prepared.clip.backend).inc(prepared.clip.frames_decoded)
            self._decoded.put(prepared)

    def _prepare(self, message: M, raw: bytes | None, times: StageTimes) -> Prepared[M]:
        if raw is not None and len(raw) > self.settings.max_message_bytes:
            raise TooLarge(f"message of {len(raw)} bytes exceeds max_message_bytes")
        return self.tagger.prepare(parse_event(raw), message, times)

    def _observe(self, times: StageTimes) -> None:
        stage = self.metrics.stage_seconds
        stage.labels(stage="queue").observe(times.fetch - times.received)
        stage.labels(stage="fetch").observe(times.decode - times.fetch)
        stage.labels(stage="decode").observe(times.decoded - times.decode)

    # ---- inference thread ------------------------------------------------------------------------
    def _inference_loop(self) -> None:
        batcher = Batcher(self._decoded, self.settings.batch_size, self.settings.batch_max_wait_ms / 1000)
        while not self._closed.is_set():
            batch = batcher.next_batch()
            if batch:
                self._infer_batch(batch)
            else:
                self.tagger.refresh_engines()

    def _infer_batch(self, batch: list[Prepared[M]]) -> None:
        self.tagger.refresh_engines()
        self.metrics.batch_size.observe(len(batch))
        started = time.monotonic()
        try:
            records = self.tagger.infer(batch)
        except Exception as exc:
            if not isinstance(exc, EngineFailed):
                log.exception("unexpected inference failure")
                self.metrics.unexpected_errors.labels(stage="infer").inc()
            error = exc if isinstance(exc, EngineFailed) else EngineFailed(f"unexpected: {type(exc).__name__}: {exc}")
            for item in batch:
                self._on_failed(item.message, error)
            return
        self.metrics.stage_seconds.labels(stage="infer").observe(time.monotonic() - started)
        for item, record in zip(batch, records, strict=True):
            self._on_tagged(item, record)
