"""The rebalance listener: partitions that leave or join this member drop their in-flight state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from kafka import ConsumerRebalanceListener, TopicPartition

log = logging.getLogger(__name__)


class PartitionState(Protocol):
    """What holds per-partition state: the offset tracker, or a delivery strategy that wraps it."""

    def drop(self, partitions: list[TopicPartition]) -> None: ...


class DropStateOnRebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: a blocking commit here would raise, so it only drops state.

    Results of revoked partitions that are still in flight get published (duplicates are allowed) but
    their offsets are never committed by this member; the new owner re-reads from the last commit.
    """

    def __init__(self, state: PartitionState, on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        self.tracker = state
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("partitions revoked", extra={"partitions": _names(revoked)})
        self.tracker.drop(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": _names(assigned)})
        self.tracker.drop(list(assigned))
        self._on_assigned(list(assigned))


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}:{tp.partition}" for tp in partitions]
