"""How a result reaches the output topics and how its input offset gets committed: one strategy per mode.

- ``AtLeastOnce`` (default): each tag or DLQ record is sent as soon as it is ready; an offset is
  committed once every record before it in its partition is acknowledged. A crash between the ack and
  the commit publishes a record again on redelivery.
- ``ExactlyOnce`` (``kafka/transactions.py``): records wait for the next commit tick; then one Kafka
  transaction per input partition carries the partition's ready records and its next offset, so a
  ``read_committed`` consumer sees each event's record once, whatever crashes in between.

The worker calls ``publish`` from pipeline threads, everything else from its consumer loop, except
``drop``, which the rebalance listener calls on kafka-python's IO thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_tagger.kafka.offsets import Committer, OffsetTracker
from stream_tagger.kafka.publisher import Publisher
from stream_tagger.metrics import Metrics
from stream_tagger.settings import Settings

OnDelivered = Callable[[], None]
OnFailed = Callable[[Exception], None]


class Delivery(Protocol):
    def publish(self, tp: TopicPartition, offset: int, topic: str, key: str | None, record: dict[str, Any],
                on_delivered: OnDelivered, on_failed: OnFailed) -> None:
        """Send ``record`` as the result of input ``tp``/``offset``; exactly one callback runs, later."""

    def commit(self) -> bool | None:
        """Commit what is ready; False when the broker could not be reached (None: nothing to do)."""

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Forget the in-flight state of partitions that left (or rejoined) this member."""

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """The group gave this member ``partitions`` (called from the rebalance listener)."""

    def accepts(self, tp: TopicPartition) -> bool:
        """Whether records polled from ``tp`` may enter the pipeline now."""

    def claim_assigned(self) -> None:
        """Consumer loop: make newly assigned partitions ready (exactly-once fences their previous owner)."""

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class AtLeastOnce:
    """Send at once; commit the acknowledged prefix of each partition (``Committer``)."""

    def __init__(self, publisher: Publisher, committer: Committer, tracker: OffsetTracker) -> None:
        self.publisher = publisher
        self.committer = committer
        self.tracker = tracker

    def publish(self, tp, offset, topic, key, record, on_delivered, on_failed) -> None:
        def acked() -> None:
            self.tracker.done(tp, offset)
            on_delivered()

        self.publisher.send(topic, key, record, acked, on_failed)

    def commit(self) -> bool | None:
        return self.committer.commit()

    def drop(self, partitions: list[TopicPartition]) -> None:
        self.tracker.drop(partitions)

    def assigned(self, partitions: list[TopicPartition]) -> None:
        return None

    def accepts(self, tp: TopicPartition) -> bool:
        return True

    def claim_assigned(self) -> None:
        return None

    def flush(self, timeout_s: float) -> None:
        self.publisher.flush(timeout_s)

    def close(self) -> None:
        self.publisher.close(timeout_s=5)


def make_delivery(settings: Settings, consumer: KafkaConsumer, tracker: OffsetTracker, committer: Committer,
                  metrics: Metrics) -> Delivery:
    """The strategy ``settings.delivery`` names."""
    if settings.delivery == "exactly_once":
        from stream_tagger.kafka.transactions import ExactlyOnce

        return ExactlyOnce(settings, consumer, tracker, metrics)
    publisher = Publisher(KafkaProducer(**settings.producer_kwargs()), settings.output_topic, settings.dlq_topic)
    return AtLeastOnce(publisher, committer, tracker)
