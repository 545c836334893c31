"""``stream-tagger memory``: the one writer of the early-action memory, with hot standbys.

The writer's group reads a topic of exactly one partition, so one member owns it and writes; the
others hold no partition and take it over at the next rebalance (a kill, a drain). Per confirmation:
parse and check the label (else DLQ), skip a (video_id, label) already in the bank or in flight, hand
it to the worker's pipeline (fetch, decode, encoder features), add the features to the bank. Every N
confirmations or T seconds the session publishes (behind the guard); only then are the offsets of the
published confirmations marked done. A refused batch goes to the DLQ. The main thread owns the session:
pipeline threads only put results on a queue.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_tagger.errors import ConfigError, EventError, GuardRefused
from stream_tagger.feedback.confirmation import parse_confirmation
from stream_tagger.feedback.session import MemorySession, Moved, Published, Refused, newest_number
from stream_tagger.health import HealthServer
from stream_tagger.kafka.offsets import Committer, OffsetTracker
from stream_tagger.kafka.publisher import Publisher
from stream_tagger.kafka.rebalance import DropStateOnRebalance
from stream_tagger.kafka.worker import DLQ_SEND_ATTEMPTS
from stream_tagger.metrics import MemoryMetrics
from stream_tagger.pipeline import Pipeline
from stream_tagger.records import Origin, dlq_record
from stream_tagger.settings import Settings
from stream_tagger.supervision import Lifecycle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Confirmed:
    """One confirmation message as it travels through the pipeline and waits in the bank."""

    tp: TopicPartition
    offset: int
    value: bytes | None
    generation: int
    key: str = ""
    label: str = ""


class _ResetOnRebalance(DropStateOnRebalance):
    """Any change of ownership ends what the session holds: the new owner re-reads it from the commit."""

    def __init__(self, writer: MemoryWriter) -> None:
        super().__init__(writer.tracker, writer.on_assigned)
        self._writer = writer

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        super().on_partitions_revoked(revoked)
        self._writer.on_revoked()


class MemoryWriter(Lifecycle):
    """The consumer loop of the memory writer; the main thread owns the session and the offsets."""

    def __init__(self, settings: Settings, metrics: MemoryMetrics, session: MemorySession) -> None:
        self.settings = settings
        self.metrics = metrics
        self.session = session
        self.tracker = OffsetTracker()
        super().__init__()
        self.subscribed = threading.Event()
        self._ownership_changed = threading.Event()
        self._results: queue.Queue[tuple[Confirmed, Any, EventError | None]] = queue.Queue()
        self._generation = 0
        self._inflight: set[str] = set()  # keys handed to the pipeline, not back yet
        self._paused = False
        self.pipeline = self._start_pipeline()

    # ---- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        s = self.settings
        producer = KafkaProducer(**s.producer_kwargs())
        self.publisher = Publisher(producer, s.confirmed_dlq_topic, s.confirmed_dlq_topic)  # DLQ records only
        self.consumer = KafkaConsumer(**{**s.consumer_kwargs(), "group_id": s.memory_group_id})
        self.committer = Committer(self.consumer, self.tracker, self.metrics)
        try:
            self._check_one_partition()
            self.consumer.subscribe([s.confirmed_topic], listener=_ResetOnRebalance(self))
            self.subscribed.set()
            log.info(
                "memory writer started",
                extra={
                    "topic": s.confirmed_topic,
                    "group": s.memory_group_id,
                    "engine": self.session.tagger.engine.ref,
                },
            )
            self._loop()
            self._drain()
        except ConfigError:  # a wrong topic, an engine it cannot grow: a clear CLI line and exit 2
            raise
        except Exception as exc:
            log.critical("memory writer failed", exc_info=True)
            self.metrics.thread_failures.labels(thread="consumer").inc()
            self.fail("consumer", exc)
        finally:
            self._close()
        return 1 if self.fatal else 0

    def ready(self) -> bool:  # a standby is ready too: it is what takes over
        return self.subscribed.is_set() and not self.stopping.is_set() and self.fatal is None

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.metrics.writer_active.set(1 if partitions else 0)
        self._ownership_changed.set()

    def on_revoked(self) -> None:
        self.metrics.writer_active.set(0)
        self._ownership_changed.set()

    def _check_one_partition(self) -> None:
        topic = self.settings.confirmed_topic
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic!r} does not exist: create it with exactly one partition")
        if len(partitions) != 1:
            raise ConfigError(
                f"topic {topic!r} has {len(partitions)} partitions; the memory writer needs exactly 1 "
                "(one member writes, the others are standbys)"
            )

    # ---- main loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        s = self.settings
        next_commit = next_lag = next_scan = 0.0
        while not self.stopping.is_set():
            self._apply_backpressure()
            polled = self.consumer.poll(timeout_ms=50, max_records=s.max_inflight)
            if self._ownership_changed.is_set():  # set inside poll: what it returned is read again
                self._ownership_changed.clear()
                self._reset("partition ownership changed", reload=False)
                polled = {}
            for tp, records in polled.items():
                for record in records:
                    self._accept(tp, record)
            self._take_results()
            now = time.monotonic()
            if self.session.due(now):
                self._publish()
            if now >= next_scan:
                self._follow_repository()
                next_scan = now + s.reload_interval_s
            if now >= next_commit:
                self.committer.commit()
                next_commit = now + s.commit_interval_ms / 1000
            if now >= next_lag:
                self.committer.update_lag()
                next_lag = now + s.lag_interval_s

    def _accept(self, tp: TopicPartition, record: Any) -> None:
        self.tracker.add(tp, record.offset)
        self.metrics.confirmations_consumed.inc()
        item = Confirmed(tp, record.offset, record.value, self._generation)
        try:
            event = parse_confirmation(
                record.value, self.session.tagger.labels, self.settings.max_message_bytes
            )
        except EventError as exc:
            self._send_dlq(item, exc)
            return
        if self.session.contains(event.key) or event.key in self._inflight:
            self._duplicate(item)
            return
        self._inflight.add(event.key)
        self.pipeline.submit(
            Confirmed(tp, record.offset, record.value, self._generation, event.key, event.early_action),
            record.value,
        )

    def _take_results(self) -> None:
        """Results of the pipeline (main thread): add features to the bank, or DLQ the failure."""
        while True:
            try:
                item, features, error = self._results.get_nowait()
            except queue.Empty:
                return
            if item.generation != self._generation:
                continue  # read before a reset: its offset is read again
            self._inflight.discard(item.key)
            if error is not None:
                self._send_dlq(item, error)
            elif self.session.add(item, features, item.label, item.key):
                self.metrics.confirmations_added.inc()
            else:
                self._duplicate(item)

    def _duplicate(self, item: Confirmed) -> None:
        self.metrics.confirmations_duplicate.inc()
        self.tracker.done(item.tp, item.offset)

    def _apply_backpressure(self) -> None:
        limit = self.settings.max_inflight
        if not self._paused and len(self._inflight) >= limit:
            self.consumer.pause(*self.consumer.assignment())
            self._paused = True
        elif self._paused and len(self._inflight) <= limit // 2:
            self.consumer.resume(*self.consumer.paused())
            self._paused = False

    # ---- publishing and resets ---------------------------------------------------------------------
    def _publish(self) -> None:
        if not self.consumer.assignment():  # lost the partition: the new owner publishes these
            self._reset("no partition to publish for", reload=False)
            return
        outcome = self.session.publish()
        if isinstance(outcome, Published):
            self.metrics.versions_published.inc()
            log.info(
                "memory published",
                extra={
                    "version": str(outcome.version_dir),
                    "added": len(outcome.items),
                    "guard": outcome.verdict.describe(),
                },
            )
            for item in outcome.items:
                self.tracker.done(item.tp, item.offset)
            self.committer.commit()
        elif isinstance(outcome, Refused):
            self.metrics.publishes_refused.inc()
            log.error(
                "memory publish refused by the guard",
                extra={
                    "guard": outcome.verdict.describe(),
                    "per_class": outcome.verdict.per_class,
                    "confirmations": len(outcome.items),
                },
            )
            error = GuardRefused(
                f"the accuracy guard refused this memory update: {outcome.verdict.describe()}"
            )
            for item in outcome.items:
                self._send_dlq(item, error)
        elif isinstance(outcome, Moved) and not self.stopping.is_set():  # stopping: re-read after the restart
            self._reset(outcome.reason, reload=True)

    def _follow_repository(self) -> None:
        """A version published or retired by someone else: rebuild the session on the new newest one."""
        newest = newest_number(self.settings.engine_dir)
        if newest != self.session.latest:
            self._reset(
                f"early_action newest is now {newest} (session grew from {self.session.latest})", reload=True
            )

    def _reset(self, reason: str, reload: bool) -> None:
        """Drop everything not yet published and read it again from the last commit."""
        log.warning(
            "memory session reset",
            extra={"reason": reason, "pending": len(self.session.pending), "inflight": len(self._inflight)},
        )
        self.committer.commit()
        self._generation += 1
        self._inflight.clear()
        if reload:  # the new session first: if it cannot open, the old one is still whole to close
            session = MemorySession.open(self.settings, self.metrics)
            self.pipeline.close()
            self.session.close()
            self.session = session
            self.pipeline = self._start_pipeline()
        else:
            self.session.revert()
        assigned = list(self.consumer.assignment())
        self.tracker.drop(assigned)
        for tp in assigned:
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    def _start_pipeline(self) -> Pipeline[Confirmed]:
        return Pipeline(
            self.session.tagger,
            self.settings,
            self.metrics,
            lambda item, record: self._results.put((item.message, record["features"], None)),
            lambda item, error: self._results.put((item, None, error)),
            self.fail,
        ).start()

    # ---- DLQ -------------------------------------------------------------------------------------
    def _send_dlq(self, item: Confirmed, error: EventError, attempt: int = 1) -> None:
        s = self.settings
        origin = Origin(topic=item.tp.topic, partition=item.tp.partition, offset=item.offset)
        record = dlq_record(
            item.value, origin, error.code, str(error), error.attempts, s.worker_id, s.dlq_original_max_bytes
        )
        log.warning(
            "confirmation rejected",
            extra={
                "video_id": record["video_id"],
                "code": error.code,
                "error": str(error)[:500],
                "offset": item.offset,
            },
        )

        def acked() -> None:
            self.metrics.confirmations_rejected.labels(code=error.code).inc()
            self.tracker.done(item.tp, item.offset)

        def failed(exc: Exception) -> None:
            if attempt >= DLQ_SEND_ATTEMPTS:  # uncommitted: read again after the restart
                self.fail("publisher", exc)
                return
            self._send_dlq(item, error, attempt + 1)

        self.publisher.send_dlq(record["video_id"], record, acked, failed)

    # ---- shutdown --------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Finish what is in flight, publish what is pending (behind the guard), commit; bounded in time."""
        self.consumer.pause(*self.consumer.assignment())
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while self.fatal is None and self._inflight and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=50)
            self._take_results()
        if self.fatal is None and self.session.pending:
            self._publish()
        self.publisher.flush(timeout_s=max(0.5, deadline - time.monotonic()))
        self.committer.commit()
        log.info("memory writer drained", extra={"left_uncommitted": self.tracker.inflight()})

    def _close(self) -> None:
        self.stopping.set()
        self.pipeline.close()
        self.consumer.close(autocommit=False)
        self.publisher.close(timeout_s=5)


def run_memory_writer(
    settings: Settings,
    stop: threading.Event | None = None,
    install_signals: bool = True,
    metrics: MemoryMetrics | None = None,
) -> int:
    """Write until SIGTERM/SIGINT (or ``stop``); publish what is pending, commit, exit 0 (1: fatal)."""
    metrics = metrics or MemoryMetrics()
    session = MemorySession.open(settings, metrics)
    writer = MemoryWriter(settings, metrics, session)
    server = HealthServer(metrics, writer.alive, writer.ready, settings.metrics_host, settings.metrics_port)
    server.start(lambda exc: writer.fail("http", exc))
    log.info("http listening", extra={"port": server.port, "worker": settings.worker_id})
    if install_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: writer.stop())
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), writer.stop()), daemon=True).start()
    try:
        status = writer.run()
    finally:
        server.stop()
        writer.session.close()
    if writer.fatal:
        log.critical("memory writer stopped after a fatal error", extra={"error": writer.fatal})
    return status
