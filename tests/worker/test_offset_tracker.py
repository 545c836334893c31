"""An offset is committable only when every earlier offset of its partition is acknowledged."""

from __future__ import annotations

from kafka import TopicPartition

from stream_tagger.kafka.offsets import OffsetTracker

P0, P1 = TopicPartition("videos.new", 0), TopicPartition("videos.new", 1)


def test_out_of_order_acks_commit_only_the_contiguous_prefix():
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.add(P0, offset)

    tracker.done(P0, 12)
    assert tracker.committable() == {}  # 10 and 11 are still in flight

    tracker.done(P0, 10)
    assert tracker.committable() == {P0: 11}
    assert tracker.inflight() == 2

    tracker.done(P0, 11)
    assert tracker.committable() == {P0: 13}
    assert tracker.inflight() == 0 and tracker.committable() == {}


def test_revoked_partition_state_is_dropped_and_late_acks_ignored():
    tracker = OffsetTracker()
    tracker.add(P0, 0)
    tracker.add(P1, 0)

    tracker.drop([P0])
    tracker.done(P0, 0)  # its result was still published, but this member no longer owns P0
    tracker.done(P1, 0)

    assert tracker.committable() == {P1: 1}
    assert tracker.inflight() == 0
