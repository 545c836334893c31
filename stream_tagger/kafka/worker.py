"""The worker process: poll → pipeline (decode, batch, infer) → publish → commit after acks.

The main thread runs the consumer loop (poll, backpressure, commits, lag); the pipeline's threads do
the work; the producer's IO thread runs the ack callbacks. Each input message ends as a tag record or
a DLQ record, and its offset is committed only once that record is acknowledged (at-least-once), or
in the same Kafka transaction as that record (``delivery=exactly_once``, kafka/delivery.py).

Before any client is built, a probe (kafka/connection.py) tells a wrong TLS/SASL setting (exit 2,
with the setting to fix) from a broker that is not there yet (retry with backoff, not ready). While
the broker is unreachable later on, ``/readyz`` fails and the clients reconnect by themselves.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from stream_tagger.errors import EngineFailed, EventError
from stream_tagger.health import HealthServer
from stream_tagger.kafka.connection import BrokerUnreachable, check_brokers
from stream_tagger.kafka.delivery import Delivery, make_delivery
from stream_tagger.kafka.offsets import Committer, OffsetTracker
from stream_tagger.kafka.rebalance import DropStateOnRebalance
from stream_tagger.metrics import Metrics
from stream_tagger.pipeline import Pipeline
from stream_tagger.records import Origin, Prepared, dlq_record
from stream_tagger.settings import Settings
from stream_tagger.supervision import Lifecycle
from stream_tagger.tagger import Tagger

log = logging.getLogger(__name__)

#: A DLQ record that cannot be published is retried this often before the worker gives up (exit 1).
DLQ_SEND_ATTEMPTS = 5
#: A consume loop that came back after longer than this was not running: the process was suspended
#: (SIGSTOP, a paused VM or node) or a Kafka call blocked. The stall watchdog does not charge that
#: time to the pipeline, which was suspended with it.
LOOP_AWAY_S = 5.0


@dataclass(frozen=True)
class Consumed:
    """One input message, as the pipeline carries it back to the Kafka side."""

    tp: TopicPartition
    offset: int
    value: bytes | None


class Worker(Lifecycle):
    def __init__(self, settings: Settings, tagger: Tagger, metrics: Metrics) -> None:
        self.settings = settings
        self.tagger = tagger
        self.metrics = metrics
        self.tracker = OffsetTracker()
        super().__init__()
        self.assigned = threading.Event()
        self._lag_due = threading.Event()  # a new assignment: publish its partitions' lag at once
        self._paused = False
        self._last_progress = self._last_check = time.monotonic()
        self.pipeline: Pipeline[Consumed] = Pipeline(
            tagger, settings, metrics, self._send_tags, self._send_dlq, self.fail
        )
        self.consumer: KafkaConsumer | None = None
        self.delivery: Delivery | None = None
        self.broker_up = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        """Consume until ``stop()``; then drain, commit and close. Returns the exit status."""
        s = self.settings
        if not self._wait_for_brokers():  # a ConfigError (wrong setting) goes up: exit 2 with its message
            return 0
        self.consumer = KafkaConsumer(**s.consumer_kwargs())
        self.committer = Committer(self.consumer, self.tracker, self.metrics, s.kafka_call_timeout_ms)
        self.delivery = make_delivery(s, self.consumer, self.tracker, self.committer, self.metrics)
        self.consumer.subscribe([s.input_topic], listener=DropStateOnRebalance(self.delivery, self._on_assigned))
        self.pipeline.start()
        log.info("worker started", extra={"worker": s.worker_id, "topic": s.input_topic, "group": s.group_id,
                                          "delivery": s.delivery})
        try:
            self._consume_loop()
            self._drain()
        except Exception as exc:
            log.critical("consumer loop failed", exc_info=True)
            self.metrics.thread_failures.labels(thread="consumer").inc()
            self.fail("consumer", exc)
        finally:
            self._close()
        return 1 if self.fatal else 0

    def ready(self) -> bool:
        return self.assigned.is_set() and self.broker_up and not self.stopping.is_set() and self.fatal is None

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        # Runs on kafka-python's IO thread: touches nothing the main loop iterates.
        self.delivery.assigned(partitions)
        self.assigned.set()
        self._lag_due.set()

    # ---- the broker link -------------------------------------------------------------------------
    def _wait_for_brokers(self) -> bool:
        """Probe until a broker accepts this client (False: stopped first). A wrong setting raises."""
        delay_s, most_s = 0.5, self.settings.reconnect_backoff_max_ms / 1000
        while not self.stopping.is_set():
            try:
                check_brokers(self.settings, self.settings.kafka_call_timeout_ms / 1000)
            except BrokerUnreachable as exc:
                self._set_broker_up(False)
                log.warning("no broker answers; retrying", extra={"error": str(exc)[:500], "retry_in_s": delay_s})
                self.stopping.wait(delay_s)
                delay_s = min(2 * delay_s, most_s)
                continue
            self._set_broker_up(True)
            return True
        return False

    def _set_broker_up(self, up: bool | None) -> None:
        """Record a Kafka round trip's outcome (None: there was none to make)."""
        if up is None or up == self.broker_up:
            return
        self.broker_up = up
        self.metrics.broker_reachable.set(1 if up else 0)
        if up:
            log.info("broker reachable")
        else:
            log.warning("broker unreachable: not ready until it answers again")

    # ---- main loop -------------------------------------------------------------------------------
    def _consume_loop(self) -> None:
        next_commit = next_lag = 0.0
        while not self.stopping.is_set():
            self._apply_backpressure()
            self.delivery.claim_assigned()
            free = max(1, self.settings.max_inflight - self.tracker.inflight())
            for tp, records in self.consumer.poll(timeout_ms=50, max_records=free).items():
                if not self.delivery.accepts(tp):  # exactly-once: not fenced yet; read again after its seek
                    continue
                for record in records:
                    self._accept(tp, record)
            now = time.monotonic()
            self._check_progress(now)
            if now >= next_commit:
                self._set_broker_up(self.delivery.commit())
                next_commit = now + self.settings.commit_interval_ms / 1000
            if now >= next_lag or self._lag_due.is_set():
                self._lag_due.clear()
                self._set_broker_up(self.committer.update_lag())
                next_lag = now + self.settings.lag_interval_s

    def _check_progress(self, now: float) -> None:
        """Fail the worker when events are in flight but none has finished for ``stall_timeout_s`` of
        the time this loop was running."""
        away, self._last_check = now - self._last_check, now
        if away > LOOP_AWAY_S:
            self._last_progress += away
        if self.tracker.inflight() == 0 or not self.broker_up:  # waiting for the broker is not a stall
            self._last_progress = now
        elif now - self._last_progress > self.settings.stall_timeout_s:
            stalled = f"{self.tracker.inflight()} events in flight, none finished in {now - self._last_progress:.0f}s"
            log.critical("worker stalled", extra={"error": stalled})
            self.fail("watchdog", TimeoutError(stalled))

    def _accept(self, tp: TopicPartition, record: Any) -> None:
        self.tracker.add(tp, record.offset)
        self.metrics.events_consumed.inc()
        self.metrics.inflight.set(self.tracker.inflight())
        self.pipeline.submit(Consumed(tp, record.offset, record.value), record.value)

    def _apply_backpressure(self) -> None:
        inflight = self.tracker.inflight()
        if not self._paused and inflight >= self.settings.max_inflight:
            self.consumer.pause(*self.consumer.assignment())
            self._paused = True
        elif self._paused and inflight <= self.settings.max_inflight // 2:
            self.consumer.resume(*self.consumer.paused())
            self._paused = False

    # ---- publishing (pipeline threads and the producer's IO thread) -------------------------------
    def _send_tags(self, item: Prepared[Consumed], record: dict[str, Any]) -> None:
        message, sent = item.message, time.monotonic()

        def acked() -> None:
            now = time.monotonic()
            self.metrics.stage_seconds.labels(stage="publish").observe(now - sent)
            self.metrics.stage_seconds.labels(stage="total").observe(now - item.times.received)
            self.metrics.events_tagged.inc()
            self._finish(message)

        def failed(exc: Exception) -> None:
            log.error("tag record not published", extra={"video_id": item.event.video_id, "error": str(exc)})
            self._send_dlq(message, EngineFailed(f"publishing the tag record failed: {exc}"))

        log.debug("tagged", extra={"video_id": item.event.video_id, "trace_id": item.event.trace_id})
        self.delivery.publish(message.tp, message.offset, self.settings.output_topic, item.event.video_id, record,
                              acked, failed)

    def _send_dlq(self, message: Consumed, error: EventError, attempt: int = 1) -> None:
        s = self.settings
        origin = Origin(topic=message.tp.topic, partition=message.tp.partition, offset=message.offset)
        record = dlq_record(
            message.value, origin, error.code, str(error), error.attempts, s.worker_id, s.dlq_original_max_bytes
        )
        video_id, trace_id = record["video_id"], record["trace_id"]
        log.warning(
            "event failed",
            extra={"video_id": video_id, "trace_id": trace_id, "code": error.code,
                   "error": str(error)[:500], "offset": message.offset},
        )

        def acked() -> None:
            self.metrics.events_failed.labels(code=error.code).inc()
            self._finish(message)

        def failed(exc: Exception) -> None:
            log.error("DLQ record not published", extra={"video_id": video_id, "error": str(exc), "attempt": attempt})
            if attempt >= DLQ_SEND_ATTEMPTS:  # left uncommitted: redelivered once Kubernetes restarts us
                self.fail("publisher", exc)
                return
            self._send_dlq(message, error, attempt + 1)

        self.delivery.publish(message.tp, message.offset, s.dlq_topic, video_id, record, acked, failed)

    def _finish(self, message: Consumed) -> None:
        """Its record is delivered (the delivery strategy has marked the offset done)."""
        self._last_progress = time.monotonic()
        self.metrics.inflight.set(self.tracker.inflight())

    # ---- shutdown --------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Stop fetching, let in-flight events finish (or reach the DLQ), commit what was acknowledged.

        Bounded by ``drain_timeout_s`` whatever the inputs are doing; what is not finished by then is
        left uncommitted and redelivered to whoever owns the partition next.
        """
        log.info("draining", extra={"inflight": self.tracker.inflight()})
        self.consumer.pause(*self.consumer.assignment())
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while self.fatal is None and self.tracker.inflight() > 0 and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=50)  # keeps the membership alive; paused: returns nothing
            self.delivery.commit()
        self.delivery.flush(timeout_s=max(0.5, deadline - time.monotonic()))
        self.delivery.commit()
        self.committer.update_lag()
        log.info("drained", extra={"left_uncommitted": self.tracker.inflight()})

    def _close(self) -> None:
        self.stopping.set()
        self.pipeline.close()
        if self.consumer is not None:
            self.consumer.close(autocommit=False)
        if self.delivery is not None:
            self.delivery.close()


def run_worker(
    settings: Settings,
    stop: threading.Event | None = None,
    install_signals: bool = True,
    metrics: Metrics | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); drain, commit, exit 0 (1 after a fatal error)."""
    metrics = metrics or Metrics()
    tagger = Tagger.from_settings(settings, metrics)
    worker = Worker(settings, tagger, metrics)
    tagger.repository.start_watching(
        settings.reload_interval_s, on_scan_error=lambda exc: metrics.engine_scan_errors.inc()
    )
    server = HealthServer(metrics, worker.alive, worker.ready, settings.metrics_host, settings.metrics_port)
    server.start(lambda exc: worker.fail("http", exc))
    log.info("http listening", extra={"port": server.port, "worker": settings.worker_id})
    if install_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    try:
        status = worker.run()
    finally:
        server.stop()
        tagger.close()
    if worker.fatal:
        log.critical("worker stopped after a fatal error", extra={"error": worker.fatal})
    return status
