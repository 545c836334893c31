"""Exactly-once delivery: per input partition, one Kafka transaction holds its records and its offset.

Ready results wait in memory (``_staged``, keyed by input offset). On each commit tick, for every
assigned partition whose committable prefix moved, the partition's own transactional producer runs
``begin → send the prefix's tag and DLQ records → send_offsets_to_transaction → commit``. The records
and the group's offset become visible together (``read_committed``), or not at all.

Fencing. The transactional id names the input partition (``<prefix>-<topic>-<partition>``, one
producer per assigned partition), not the worker: whoever owns a partition next calls
``init_transactions`` with the same id, which aborts the previous owner's open transaction and
fences it (its next commit raises ``ProducerFencedError``, its records stay aborted). A newly
assigned partition accepts no records until that is done and the consumer is moved to the offset
committed by then (``claim_assigned``): so a zombie's transaction is aborted, never committed, and
nothing it committed is redone. The group metadata also goes with the offsets (KIP-447), which Kafka
2.5+ checks against the group's generation as well.

Records are sent only inside the commit, right before it, so an open transaction holds records for
milliseconds: a ``read_committed`` reader waits behind an open transaction (Kafka's last stable
offset), and a worker killed mid-commit leaves little for the next owner's fencing to abort.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError, ProducerFencedError
from kafka.structs import OffsetAndMetadata

from stream_tagger.kafka.delivery import OnDelivered, OnFailed
from stream_tagger.kafka.offsets import OffsetTracker
from stream_tagger.metrics import Metrics
from stream_tagger.records import key_bytes, to_json_bytes
from stream_tagger.settings import Settings

log = logging.getLogger(__name__)

#: Room kept for the record batch's own framing below ``max_request_size``.
RECORD_OVERHEAD_BYTES = 1024
#: After a commit that could not reach the broker, the next try waits this long, doubling per failure.
RETRY_BACKOFF_MAX_S = 5.0


class BoundedTransactionalProducer(KafkaProducer):
    """A KafkaProducer whose transaction steps give up after ``max_block_ms``, as Java's client does.

    kafka-python 3.0.12 waits without a timeout in ``send_offsets_to_transaction``,
    ``commit_transaction`` and ``abort_transaction``. After a broker kill and restart one such wait
    never returned (py-spy: main thread in ``TransactionalRequestResult.wait``, the sender idle), which
    froze the consumer loop for good. A timeout here becomes a failed commit: the producer is replaced
    and its ``init_transactions`` aborts whatever the old one left open.
    """

    def _wait_for(self, result, step: str) -> None:
        self._sender.wakeup()
        if not result.wait(timeout_ms=self.config["max_block_ms"]):
            raise KafkaTimeoutError(f"{step} did not complete within {self.config['max_block_ms']} ms")

    def send_offsets_to_transaction(self, offsets, group_metadata) -> None:
        self._wait_for(self._transaction_manager.send_offsets_to_transaction(offsets, group_metadata),
                       "send_offsets_to_transaction")

    def commit_transaction(self) -> None:
        self._wait_for(self._transaction_manager.begin_commit(), "commit_transaction")

    def abort_transaction(self) -> None:
        self._wait_for(self._transaction_manager.begin_abort(), "abort_transaction")


@dataclass(frozen=True)
class Staged:
    topic: str
    key: bytes | None
    value: bytes
    on_delivered: OnDelivered


class ExactlyOnce:
    def __init__(self, settings: Settings, consumer: KafkaConsumer, tracker: OffsetTracker, metrics: Metrics,
                 producer_factory=BoundedTransactionalProducer) -> None:
        self.settings = settings
        self.consumer = consumer
        self.tracker = tracker
        self.metrics = metrics
        self._producer_factory = producer_factory
        self._lock = threading.Lock()  # publish (pipeline threads) vs drop (IO thread) vs commit (loop)
        self._staged: dict[TopicPartition, dict[int, Staged]] = {}
        self._positions: dict[TopicPartition, int] = {}  # committable, not yet committed
        self._producers: dict[TopicPartition, KafkaProducer] = {}
        self._stale: list[KafkaProducer] = []  # of partitions that left: closed by the loop, not the IO thread
        self._claimed: set[TopicPartition] = set()
        self._to_claim: set[TopicPartition] = set()
        self._max_record = settings.producer_kwargs()["max_request_size"] - RECORD_OVERHEAD_BYTES
        self._failures = 0
        self._retry_at = 0.0

    # ---- pipeline threads ------------------------------------------------------------------------
    def publish(self, tp, offset, topic, key, record, on_delivered: OnDelivered, on_failed: OnFailed) -> None:
        value, key_raw = to_json_bytes(record), key_bytes(key)
        if len(value) + len(key_raw or b"") > self._max_record:  # would abort the whole transaction
            on_failed(MessageSizeTooLargeError(f"record of {len(value)} bytes exceeds max_request_size"))
            return
        with self._lock:
            if not self.tracker.is_pending(tp, offset):
                return  # its partition left this member meanwhile; the new owner redoes the event
            self._staged.setdefault(tp, {})[offset] = Staged(topic, key_raw, value, on_delivered)
            self.tracker.done(tp, offset)

    # ---- rebalance listener (IO thread) ----------------------------------------------------------
    def drop(self, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self.tracker.drop(partitions)
            for tp in partitions:
                self._staged.pop(tp, None)
                self._positions.pop(tp, None)
                self._claimed.discard(tp)
                # someone else may init this id while it is away: claiming it again starts a new producer
                if (producer := self._producers.pop(tp, None)) is not None:
                    self._stale.append(producer)

    def assigned(self, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self._to_claim.update(partitions)

    # ---- consumer loop ---------------------------------------------------------------------------
    def accepts(self, tp: TopicPartition) -> bool:
        return tp in self._claimed

    def claim_assigned(self) -> None:
        """Fence the previous owners of new partitions, then read what they committed."""
        with self._lock:
            claiming, self._to_claim = self._to_claim, set()
            stale, self._stale = self._stale, []
        for producer in stale:
            _discard(producer)
        claiming &= self.consumer.assignment()
        if not claiming:
            return
        try:
            for tp in sorted(claiming):
                self._producer(tp)  # init_transactions: aborts the previous owner's open transaction
            for tp in sorted(claiming):
                committed = self.consumer.committed(tp, timeout_ms=self.settings.kafka_call_timeout_ms)
                self.consumer.seek(tp, committed or 0)
        except KafkaError as exc:
            log.warning("claiming partitions failed; retrying", extra={"error": str(exc)})
            with self._lock:
                self._to_claim |= claiming
            return
        still_assigned = claiming & self.consumer.assignment()  # not under the lock: drop() runs on the IO thread
        with self._lock:
            self._claimed |= still_assigned
        log.info("partitions claimed", extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in sorted(claiming)]})

    def commit(self) -> bool | None:
        """One transaction per partition with ready results; False when the broker did not answer."""
        if time.monotonic() < self._retry_at:
            return False
        with self._lock:
            self._positions.update(self.tracker.committable())
            work = [(tp, position) for tp, position in sorted(self._positions.items()) if tp in self._claimed]
        if not work:
            return None
        for tp, position in work:
            if not self._commit_partition(tp, position):
                self._failures += 1
                self._retry_at = time.monotonic() + min(RETRY_BACKOFF_MAX_S, 0.1 * 2 ** self._failures)
                return False
        self._failures, self._retry_at = 0, 0.0
        return True

    def _commit_partition(self, tp: TopicPartition, position: int) -> bool:
        with self._lock:
            staged = self._staged.get(tp, {})
            batch = sorted((offset, item) for offset, item in staged.items() if offset < position)
        producer = None
        try:
            producer = self._producer(tp)
            producer.begin_transaction()
            for _offset, item in batch:
                producer.send(item.topic, key=item.key, value=item.value)
            producer.send_offsets_to_transaction({tp: OffsetAndMetadata(position, "", -1)},
                                                 self.consumer.group_metadata())
            producer.commit_transaction()
        except ProducerFencedError:
            self.metrics.transactions.labels(outcome="fenced").inc()
            log.warning("fenced: another member owns this partition now", extra={"partition": f"{tp.topic}:{tp.partition}"})
            self._retire(tp)
            return True  # the broker answered; this member just lost the partition
        except KafkaError as exc:
            self.metrics.transactions.labels(outcome="failed").inc()
            log.warning("transaction failed; reading the partition again from its committed offset",
                        extra={"partition": f"{tp.topic}:{tp.partition}", "error": str(exc)})
            self._reset(tp, producer)
            self._start_over(tp)
            return False
        self.metrics.transactions.labels(outcome="committed").inc()
        with self._lock:
            for offset, _item in batch:
                staged.pop(offset, None)
            if self._positions.get(tp) == position:
                del self._positions[tp]
        self.tracker.mark_committed({tp: position})
        for _offset, item in batch:
            item.on_delivered()
        return True

    def _producer(self, tp: TopicPartition) -> KafkaProducer:
        producer = self._producers.get(tp)
        if producer is None:
            producer = self._producer_factory(**self.settings.transactional_producer_kwargs(tp.topic, tp.partition))
            try:
                producer.init_transactions()
            except BaseException:
                _discard(producer)
                raise
            self._producers[tp] = producer
        return producer

    def _reset(self, tp: TopicPartition, producer: KafkaProducer | None) -> None:
        """Abort the failed transaction; if the producer cannot, replace it (the next init aborts it)."""
        if producer is None:
            return
        try:
            producer.abort_transaction()
        except Exception:  # noqa: BLE001 (any state it cannot abort from: start over with a new producer)
            self._producers.pop(tp, None)
            _discard(producer)

    def _retire(self, tp: TopicPartition) -> None:
        self.drop([tp])  # its producer goes stale; the rebalance that follows decides who owns tp

    def _start_over(self, tp: TopicPartition) -> None:
        """After a transaction whose outcome is unknown (a commit that timed out may still have landed),
        never send its batch again: claim the partition anew. A fresh producer's init_transactions
        completes or aborts that transaction, and the group's committed offset, which moves only with
        it, says where to read again, so each result is committed once whichever way it went.
        """
        self.drop([tp])
        with self._lock:
            self._to_claim.add(tp)

    def flush(self, timeout_s: float) -> None:
        return None  # nothing is sent outside a commit

    def close(self) -> None:
        with self._lock:
            producers, self._producers = [*self._producers.values(), *self._stale], {}
            self._stale = []
        for producer in producers:
            _discard(producer, timeout_s=2)


def _discard(producer: KafkaProducer, timeout_s: float = 0) -> None:
    """Close a producer whose open transaction is abandoned, whatever it still holds.

    kafka-python flushes before it closes, and a flush that times out raises before the sender thread
    is stopped (measured: a commit failing during a broker restart then killed the worker). What the
    producer holds belongs to a transaction that is never committed: the next producer with its
    transactional id aborts it. So the sender is stopped without sending.
    """
    try:
        producer.close(timeout=timeout_s)
    except KafkaError as exc:
        log.info("producer closed with records unsent (their transaction is abandoned)", extra={"error": str(exc)})
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
