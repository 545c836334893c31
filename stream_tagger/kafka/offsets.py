"""Offsets: which are done, which may be committed, committing them, and the lag they leave.

An offset becomes committable only when every record before it in its partition has its tag or DLQ
record acknowledged by the broker (at-least-once, DESIGN §1).
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from stream_tagger.metrics import Metrics

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

    def is_pending(self, tp: TopicPartition, offset: int) -> bool:
        with self._lock:
            return offset in self._pending.get(tp, ())

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


class Committer:
    """Commits what the tracker says is done, and publishes the lag those commits leave."""

    def __init__(self, consumer: KafkaConsumer, tracker: OffsetTracker, metrics: Metrics,
                 call_timeout_ms: int | None = None) -> None:
        self.consumer = consumer
        self.tracker = tracker
        self.metrics = metrics
        #: Bounds the lag probe's requests, so a broker outage cannot hold the consumer loop for long.
        self.call_timeout_ms = call_timeout_ms
        self._uncommitted: dict[TopicPartition, int] = {}

    def commit(self) -> bool | None:
        """True once committed, False when the broker failed the commit, None when nothing moved."""
        self._uncommitted.update(self.tracker.committable())
        assigned = self.consumer.assignment()
        positions = {tp: offset for tp, offset in self._uncommitted.items() if tp in assigned}
        self._uncommitted = positions
        if not positions:
            return None
        try:
            self.consumer.commit(commit_offsets(positions))
        except CommitFailedError as exc:  # the group rebalanced: the new owners re-read these
            log.warning("commit failed after a rebalance", extra={"error": str(exc)})
            return True
        except KafkaError as exc:  # transient: keep the positions and try again next time
            log.warning("commit failed", extra={"error": str(exc)})
            return False
        self.tracker.mark_committed(positions)
        self._uncommitted.clear()
        return True

    def update_lag(self) -> bool | None:
        """Publish the lag; False when the broker did not answer, None when nothing is assigned."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return None
        try:
            ends = self.consumer.end_offsets(assigned, timeout_ms=self.call_timeout_ms)
            lags = {}
            for tp in assigned:
                committed = self.tracker.committed(tp)
                if committed is None:
                    committed = self.consumer.committed(tp, timeout_ms=self.call_timeout_ms) or 0
                    self.tracker.mark_committed({tp: committed})
                # Tansu answers ListOffsets with the last batch's base offset + 1; fetches carry the true end
                end = max(ends[tp], self.consumer.highwater(tp) or 0)
                lags[(tp.topic, tp.partition)] = max(0, end - committed)
        except KafkaError as exc:
            log.warning("lag update failed", extra={"error": str(exc)})
            return False
        self.metrics.set_lag(lags)
        return True
