"""The local broker behaves like Kafka where the worker relies on it (kafka-python, real Tansu process)."""

from __future__ import annotations

import threading
import time

from kafka import KafkaConsumer, TopicPartition

GROUP_JOIN_TIMEOUT_S = 30.0


def assignments_after_join(consumers: list[KafkaConsumer], per_member: int,
                           timeout_s: float) -> list[set[TopicPartition]]:
    """Poll every member in its own thread (as separate workers would) until each owns ``per_member``.

    One thread polling both members in turn makes kafka-python re-send JoinGroup while Tansu holds the
    first one, and the second member then rejoins forever; separate pollers join in ~3 s.
    """
    done = threading.Event()

    def poll_until_done(consumer: KafkaConsumer) -> None:
        while not done.is_set():
            consumer.poll(timeout_ms=100)

    pollers = [threading.Thread(target=poll_until_done, args=(consumer,)) for consumer in consumers]
    for poller in pollers:
        poller.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(len(c.assignment()) == per_member for c in consumers):
        time.sleep(0.05)
    done.set()
    for poller in pollers:
        poller.join()
    return [set(consumer.assignment()) for consumer in consumers]


def test_group_of_two_members_splits_four_partitions(topic_factory, consumer_factory, group_id):
    # Given a topic with 4 partitions
    topic = topic_factory(partitions=4)

    # When two consumers join the same group
    members = [consumer_factory(topic, group_id=group_id) for _ in range(2)]
    assigned = assignments_after_join(members, 2, GROUP_JOIN_TIMEOUT_S)

    # Then each owns 2 partitions, and together they own all 4 exactly once
    assert [len(partitions) for partitions in assigned] == [2, 2]
    assert assigned[0] | assigned[1] == {TopicPartition(topic, p) for p in range(4)}


def test_committed_offsets_survive_a_consumer_restart(topic_factory, producer_factory, consumer_factory,
                                                      group_id, poll_records):
    # Given 6 messages on a one-partition topic, and a consumer that read and committed the first 3
    topic = topic_factory(partitions=1)
    producer = producer_factory()
    for index in range(6):
        producer.send(topic, value=f"m{index}".encode())
    producer.flush(timeout=10)
    first = consumer_factory(topic, group_id=group_id, max_poll_records=3)
    read_first = poll_records(first, 3)
    first.commit()
    first.close(autocommit=False)

    # When a new consumer joins the same group
    second = consumer_factory(topic, group_id=group_id)
    read_second = poll_records(second, 3)

    # Then it resumes right after the committed offset: nothing skipped, nothing read twice
    assert [r.value for r in read_first] == [b"m0", b"m1", b"m2"]
    assert [r.value for r in read_second] == [b"m3", b"m4", b"m5"]
    assert second.committed(TopicPartition(topic, 0)) == 3


def test_produce_with_acks_all_is_readable(topic_factory, producer_factory, consumer_factory, poll_records):
    # Given a producer that waits for every replica's acknowledgement
    topic = topic_factory(partitions=2)
    producer = producer_factory(acks="all")

    # When it sends a keyed message and the broker acknowledges it
    metadata = producer.send(topic, key=b"video-1", value=b'{"video_id": "video-1"}').get(timeout=10)

    # Then a reader of that partition finds it at the acknowledged offset
    reader = consumer_factory()
    partition = TopicPartition(topic, metadata.partition)
    reader.assign([partition])
    reader.seek(partition, metadata.offset)
    (record,) = poll_records(reader, 1)
    assert (record.key, record.value, record.offset) == (b"video-1", b'{"video_id": "video-1"}', metadata.offset)
