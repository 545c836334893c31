"""Fault injection against the real broker and real worker processes: nothing is lost.

Invariant (DESIGN.md §1): every input event ends as a tag record or a DLQ record; duplicates after a
crash are allowed and carry the same video_id.
"""

from __future__ import annotations

import json
import signal
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

EVENTS = 60
RESULTS_TIMEOUT_S = 90.0
#: Longer than the group session timeout (6 s, stream_tagger.broker.kafka_timeouts).
BROKER_FREEZE_S = 8.0


def produce_events(producer, topic: str, corpus, count: int, prefix: str) -> list[str]:
    """Produce ``count`` good events keyed by video_id; return the ids."""
    ids = [f"{prefix}-{index}" for index in range(count)]
    for video_id in ids:
        event = {"video_id": video_id, "uri": corpus.uri("good.mp4"), "title": f"clip {video_id}"}
        producer.send(topic, key=video_id.encode(), value=json.dumps(event).encode())
    producer.flush(timeout=10)
    return ids


def handled_ids(results) -> set[str]:
    return results.tagged_ids() | {record.get("video_id") for record in results.dlq}


def committed_offsets(broker, group_id: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offsets = admin.list_consumer_group_offsets(group_id)
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def test_kill_9_of_one_worker_loses_nothing(broker, corpus, topics, group_id, producer_factory, worker_factory,
                                            results_for, worker_env_for):
    # Given two workers in one group and events on 4 partitions
    env = worker_env_for(topics, group_id)
    victim, survivor = worker_factory(env), worker_factory(env)
    results = results_for(topics)
    ids = produce_events(producer_factory(), topics.input, corpus, EVENTS, "k9")

    # When one worker is killed with SIGKILL while results are still being produced
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), victim.log_tail()
    victim.signal(signal.SIGKILL)

    # Then the survivor takes over its partitions and every event ends tagged or in the DLQ
    done = results.wait_for(lambda r: handled_ids(r) >= set(ids), RESULTS_TIMEOUT_S)
    assert done, f"missing {sorted(set(ids) - handled_ids(results))[:10]}\n{survivor.log_tail()}"
    assert len(set(ids)) == len(results.tagged_ids() | {r.get("video_id") for r in results.dlq})
    assert survivor.alive()


def test_worker_recovers_from_a_frozen_broker_without_restart(broker, corpus, topics, group_id,
                                                              producer_factory, worker_factory, results_for,
                                                              worker_env_for):
    # Given a worker that has tagged a first batch
    worker = worker_factory(worker_env_for(topics, group_id))
    results = results_for(topics)
    producer = producer_factory()
    before = produce_events(producer, topics.input, corpus, 5, "before")
    assert results.wait_for(lambda r: r.tagged_ids() >= set(before), RESULTS_TIMEOUT_S), worker.log_tail()

    # When the broker is frozen for longer than the group session timeout, then thawed
    broker.pause()
    try:
        time.sleep(BROKER_FREEZE_S)  # the fault itself lasts this long; nothing is asserted on timing
    finally:
        broker.resume()
    after = produce_events(producer, topics.input, corpus, 5, "after")

    # Then the same worker process tags the new events
    assert results.wait_for(lambda r: r.tagged_ids() >= set(after), RESULTS_TIMEOUT_S), worker.log_tail()
    assert worker.alive()


def test_sigterm_drains_publishes_and_commits(broker, corpus, topics, group_id, producer_factory, worker_factory,
                                              results_for, worker_env_for):
    # Given a worker busy with events
    env = worker_env_for(topics, group_id)
    worker = worker_factory(env)
    results = results_for(topics)
    ids = produce_events(producer_factory(), topics.input, corpus, EVENTS, "term")
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), worker.log_tail()

    # When it receives SIGTERM
    worker.signal(signal.SIGTERM)

    # Then it exits 0, and every offset it committed belongs to an event whose result was published
    assert worker.wait() == 0, worker.log_tail()
    results.wait_for(lambda r: False, 1.0)  # read whatever was published before the exit
    committed = committed_offsets(broker, group_id, topics.input)
    assert committed, "a drained worker must have committed offsets"
    handled = handled_ids(results)
    for partition, offset in committed.items():
        unpublished = [vid for vid in ids_at(broker, topics.input, partition, offset) if vid not in handled]
        assert unpublished == [], f"partition {partition}: committed past unpublished {unpublished[:5]}"

    # And a new worker finishes the rest: nothing lost
    worker_factory(env)
    assert results.wait_for(lambda r: handled_ids(r) >= set(ids), RESULTS_TIMEOUT_S)


def ids_at(broker, topic: str, partition: int, end_offset: int) -> list[str]:
    """video_ids (message keys) of ``topic``/``partition`` at offsets below ``end_offset``."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        keys: list[str] = []
        deadline = time.monotonic() + 20
        while len(keys) < end_offset and time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=200).get(tp, []):
                if record.offset < end_offset:
                    keys.append(record.key.decode())
        return keys
    finally:
        consumer.close(autocommit=False)
