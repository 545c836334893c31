"""The worker process: poll → decode pool → batcher → engines → publish → commit after acks.

Threads: the main loop (poll, backpressure, commits, lag), a decode pool (PyAV releases the GIL), and
one inference thread fed by a bounded queue, so decoding the next events overlaps inference.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError

from stream_tagger.batcher import Batcher
from stream_tagger.errors import DecodeFailed, EngineFailed, EventError, TooLarge
from stream_tagger.events import Origin, dlq_record, parse_event, salvage_ids
from stream_tagger.kafka_io import DropStateOnRebalance, OffsetTracker, Publisher, commit_offsets
from stream_tagger.metrics import Metrics
from stream_tagger.settings import Settings
from stream_tagger.tagging import Prepared, Tagger

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, settings: Settings, tagger: Tagger, metrics: Metrics) -> None:
        self.settings = settings
        self.tagger = tagger
        self.metrics = metrics
        self.tracker = OffsetTracker()
        self.stopping = threading.Event()
        self.assigned = threading.Event()
        self._lag_due = threading.Event()  # a new assignment: publish its partitions' lag at once
        self._closed = threading.Event()
        self._decoded: queue.Queue[Prepared] = queue.Queue(maxsize=2 * settings.max_inflight)
        self._pool = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="decode")
        self._uncommitted: dict[TopicPartition, int] = {}
        self._paused = False
        self.consumer: KafkaConsumer | None = None
        self.publisher: Publisher | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        """Consume until ``stop()``; then drain, commit and close. Returns the exit status."""
        s = self.settings
        self.publisher = Publisher(KafkaProducer(**s.producer_kwargs()), s.output_topic, s.dlq_topic)
        self.consumer = KafkaConsumer(**s.consumer_kwargs())
        self.consumer.subscribe(
            [s.input_topic], listener=DropStateOnRebalance(self.tracker, self._on_assigned)
        )
        inference = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        inference.start()
        log.info("worker started", extra={"worker": s.worker_id, "topic": s.input_topic, "group": s.group_id})
        try:
            self._consume_loop()
            self._drain()
        finally:
            self._close(inference)
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def ready(self) -> bool:
        return self.assigned.is_set() and not self.stopping.is_set()

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        # Runs on kafka-python's IO thread: touches nothing the main loop iterates.
        self.assigned.set()
        self._lag_due.set()

    # ---- main loop -------------------------------------------------------------------------------
    def _consume_loop(self) -> None:
        next_commit = next_lag = 0.0
        while not self.stopping.is_set():
            self._apply_backpressure()
            free = max(1, self.settings.max_inflight - self.tracker.inflight())
            for tp, records in self.consumer.poll(timeout_ms=50, max_records=free).items():
                for record in records:
                    self._accept(tp, record)
            now = time.monotonic()
            if now >= next_commit:
                self._commit()
                next_commit = now + self.settings.commit_interval_ms / 1000
            if now >= next_lag or self._lag_due.is_set():
                self._lag_due.clear()
                self._update_lag()
                next_lag = now + self.settings.lag_interval_s

    def _accept(self, tp: TopicPartition, record: Any) -> None:
        self.tracker.add(tp, record.offset)
        self.metrics.events_consumed.inc()
        self.metrics.inflight.set(self.tracker.inflight())
        self._pool.submit(self._prepare, tp, record, {"received": time.monotonic()})

    def _apply_backpressure(self) -> None:
        inflight = self.tracker.inflight()
        if not self._paused and inflight >= self.settings.max_inflight:
            self.consumer.pause(*self.consumer.assignment())
            self._paused = True
        elif self._paused and inflight <= self.settings.max_inflight // 2:
            self.consumer.resume(*self.consumer.paused())
            self._paused = False

    # ---- decode pool -----------------------------------------------------------------------------
    def _prepare(self, tp: TopicPartition, record: Any, marks: dict[str, float]) -> None:
        try:
            raw = record.value
            if raw is not None and len(raw) > self.settings.max_message_bytes:
                raise TooLarge(f"message of {len(raw)} bytes exceeds max_message_bytes")
            event = parse_event(raw)
            prepared = self.tagger.prepare(event, marks)
        except EventError as exc:
            self._send_dlq(tp, record, exc)
            return
        except Exception as exc:  # never let one event kill a pool thread silently
            log.exception("unexpected decode-stage failure")
            self._send_dlq(tp, record, DecodeFailed(f"unexpected: {exc}"))
            return
        self.metrics.decode_frames.labels(backend=prepared.clip.backend).inc(prepared.clip.frames_decoded)
        self._observe(
            marks,
            ("queue", "received", "fetch"),
            ("fetch", "fetch", "decode"),
            ("decode", "decode", "decoded"),
        )
        prepared.context = (tp, record)
        self._decoded.put(prepared)

    # ---- inference thread ------------------------------------------------------------------------
    def _inference_loop(self) -> None:
        batcher = Batcher(self._decoded, self.settings.batch_size, self.settings.batch_max_wait_ms / 1000)
        while not self._closed.is_set():
            batch = batcher.next_batch()
            if batch:
                self._infer_batch(batch)
            elif not self.stopping.is_set():
                self._refresh_engines()

    def _refresh_engines(self) -> None:
        try:
            self.tagger.refresh_engines()
        except Exception:  # a new version that cannot be bound must not stop serving the old one
            log.exception("engine swap failed")

    def _infer_batch(self, batch: list[Prepared]) -> None:
        self._refresh_engines()
        self.metrics.batch_size.observe(len(batch))
        started = time.monotonic()
        try:
            records = self.tagger.infer(batch)
        except Exception as exc:
            error = exc if isinstance(exc, EngineFailed) else EngineFailed(f"unexpected: {exc}")
            for item in batch:
                self._send_dlq(*item.context, error)
            return
        self.metrics.stage_seconds.labels(stage="infer").observe(time.monotonic() - started)
        for item, tag_record in zip(batch, records, strict=True):
            self._send_tags(item, tag_record)

    # ---- publishing ------------------------------------------------------------------------------
    def _send_tags(self, item: Prepared, record: dict[str, Any]) -> None:
        tp, message = item.context
        sent = time.monotonic()

        def acked() -> None:
            now = time.monotonic()
            self.metrics.stage_seconds.labels(stage="publish").observe(now - sent)
            self.metrics.stage_seconds.labels(stage="total").observe(now - item.marks["received"])
            self.metrics.events_tagged.inc()
            self._finish(tp, message.offset)

        def failed(exc: Exception) -> None:
            log.error("tag record not published", extra={"video_id": item.event.video_id, "error": str(exc)})
            self._send_dlq(tp, message, EngineFailed(f"publishing the tag record failed: {exc}"))

        log.debug("tagged", extra={"video_id": item.event.video_id, "trace_id": item.event.trace_id})
        self.publisher.send(self.settings.output_topic, item.event.video_id, record, acked, failed)

    def _send_dlq(self, tp: TopicPartition, message: Any, error: EventError) -> None:
        s = self.settings
        origin = Origin(topic=tp.topic, partition=tp.partition, offset=message.offset)
        attempts = getattr(error, "attempts", 1)
        record = dlq_record(
            message.value, origin, error.code, str(error), attempts, s.worker_id, s.dlq_original_max_bytes
        )
        video_id, trace_id = salvage_ids(message.value if record["original_truncated"] is False else None)
        log.warning(
            "event failed",
            extra={
                "video_id": video_id,
                "trace_id": trace_id,
                "code": error.code,
                "error": str(error)[:500],
                "offset": message.offset,
            },
        )

        def acked() -> None:
            self.metrics.events_failed.labels(code=error.code).inc()
            self._finish(tp, message.offset)

        def failed(exc: Exception) -> None:  # left uncommitted: redelivered after a restart or rebalance
            log.error("DLQ record not published", extra={"video_id": video_id, "error": str(exc)})

        self.publisher.send(s.dlq_topic, video_id, record, acked, failed)

    def _finish(self, tp: TopicPartition, offset: int) -> None:
        self.tracker.done(tp, offset)
        self.metrics.inflight.set(self.tracker.inflight())

    def _observe(self, marks: dict[str, float], *stages: tuple[str, str, str]) -> None:
        for stage, start, end in stages:
            self.metrics.stage_seconds.labels(stage=stage).observe(marks[end] - marks[start])

    # ---- commits, lag, shutdown ------------------------------------------------------------------
    def _commit(self) -> None:
        self._uncommitted.update(self.tracker.committable())
        assigned = self.consumer.assignment()
        positions = {tp: offset for tp, offset in self._uncommitted.items() if tp in assigned}
        self._uncommitted = positions
        if not positions:
            return
        try:
            self.consumer.commit(commit_offsets(positions))
        except CommitFailedError as exc:  # the group rebalanced: the new owners re-read these
            log.warning("commit failed after a rebalance", extra={"error": str(exc)})
            return
        except KafkaError as exc:  # transient: keep the positions and try again next time
            log.warning("commit failed", extra={"error": str(exc)})
            return
        self.tracker.mark_committed(positions)
        self._uncommitted.clear()

    def _update_lag(self) -> None:
        assigned = list(self.consumer.assignment())
        if not assigned:
            return
        try:
            ends = self.consumer.end_offsets(assigned)
            lags = {}
            for tp in assigned:
                committed = self.tracker.committed(tp)
                if committed is None:
                    committed = self.consumer.committed(tp) or 0
                    self.tracker.mark_committed({tp: committed})
                # Tansu answers ListOffsets with the last batch's base offset + 1; fetches carry the true end
                end = max(ends[tp], self.consumer.highwater(tp) or 0)
                lags[(tp.topic, tp.partition)] = max(0, end - committed)
        except KafkaError as exc:
            log.warning("lag update failed", extra={"error": str(exc)})
            return
        self.metrics.set_lag(lags)

    def _drain(self) -> None:
        """Stop fetching, let in-flight events finish (or reach the DLQ), commit what was acknowledged."""
        log.info("draining", extra={"inflight": self.tracker.inflight()})
        self.consumer.pause(*self.consumer.assignment())
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while self.tracker.inflight() > 0 and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=50)  # keeps the membership alive; paused: returns nothing
            self._commit()
        self.publisher.flush(timeout_s=max(1.0, deadline - time.monotonic()))
        self._commit()
        self._update_lag()
        log.info("drained", extra={"left_uncommitted": self.tracker.inflight()})

    def _close(self, inference: threading.Thread) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._closed.set()
        inference.join(timeout=10)
        if self.consumer is not None:
            self.consumer.close(autocommit=False)
        if self.publisher is not None:
            self.publisher.producer.close(timeout=5)
