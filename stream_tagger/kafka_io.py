"""The Kafka side of the worker: offset bookkeeping, async publishing with acks, the rebalance listener.

An offset becomes committable only when every record before it in its partition has its tag or DLQ
record acknowledged by the broker (at-least-once, DESIGN §1).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


class OffsetTracker:
    """Per partition: offsets in flight and acknowledged; thread-safe (acks arrive on the producer thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[TopicPartition, dict[int, bool]] = {}
        self._committed: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            self._pending.setdefault(tp, {})[offset] = False

    def done(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            offsets = self._pending.get(tp)
            if offsets is not None and offset in offsets:  # absent: its partition was revoked meanwhile
                offsets[offset] = True

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Forget in-flight state of partitions that left us (their results may still be published)."""
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)
                self._committed.pop(tp, None)

    def inflight(self) -> int:
        with self._lock:
            return sum(len(offsets) for offsets in self._pending.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Next offsets to commit (only those that moved); removes the acknowledged prefix."""
        moved = {}
        with self._lock:
            for tp, offsets in self._pending.items():
                position = None
                for offset in sorted(offsets):
                    if not offsets[offset]:
                        break
                    del offsets[offset]
                    position = offset + 1
                if position is not None:
                    moved[tp] = position
        return moved

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._committed.update(positions)

    def committed(self, tp: TopicPartition) -> int | None:
        with self._lock:
            return self._committed.get(tp)


def commit_offsets(positions: dict[TopicPartition, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in positions.items()}


class Publisher:
    """Async produce of tag and DLQ records keyed by video_id; ``on_ack`` runs once the broker has it."""

    def __init__(self, producer: KafkaProducer, output_topic: str, dlq_topic: str) -> None:
        self.producer = producer
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic

    def send(
        self,
        topic: str,
        key: str | None,
        record: dict[str, Any],
        on_ack: Callable[[], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        value = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            future = self.producer.send(topic, key=key.encode() if key else None, value=value)
        except Exception as exc:  # e.g. a record over max_request_size: the caller decides
            on_error(exc)
            return
        future.add_callback(lambda _metadata: on_ack())
        future.add_errback(on_error)

    def flush(self, timeout_s: float) -> None:
        self.producer.flush(timeout=timeout_s)


class DropStateOnRebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: a blocking commit here would raise, so it only drops state.

    Results of revoked partitions that are still in flight get published (duplicates are allowed) but
    their offsets are never committed by this member; the new owner re-reads from the last commit.
    """

    def __init__(self, tracker: OffsetTracker, on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        self.tracker = tracker
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("partitions revoked", extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in revoked]})
        self.tracker.drop(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned", extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in assigned]}
        )
        self.tracker.drop(list(assigned))
        self._on_assigned(list(assigned))
