"""Worker faults against the real broker and real ``stream-tagger run`` processes: nothing is lost.

Invariant (DESIGN.md §1): every input event ends as a tag record or a DLQ record; duplicates after a
crash are allowed and carry the same video_id.
"""

from __future__ import annotations

import signal
import time

from kafka import KafkaConsumer, TopicPartition

EVENTS = 60
RESULTS_TIMEOUT_S = 90.0


def committed_offsets(broker, group_id: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (partitions never committed are left out)."""
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        offsets = {p: reader.committed(TopicPartition(topic, p)) for p in reader.partitions_for_topic(topic)}
    finally:
        reader.close(autocommit=False)
    return {partition: offset for partition, offset in offsets.items() if offset is not None}


def keys_below(broker, topic: str, partition: int, end_offset: int) -> list[str]:
    """Message keys (video_ids) of ``topic``/``partition`` at offsets below ``end_offset``."""
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        reader.seek(tp, 0)
        keys: list[str] = []
        deadline = time.monotonic() + 20
        while len(keys) < end_offset and time.monotonic() < deadline:
            keys += [r.key.decode() for r in reader.poll(timeout_ms=200).get(tp, []) if r.offset < end_offset]
        return keys
    finally:
        reader.close(autocommit=False)


def test_kill_9_of_one_worker_loses_nothing(topics, group_id, worker_factory, results_for, worker_env_for,
                                            produce_good_events):
    # Given two workers in one group and events on 4 partitions
    env = worker_env_for(topics, group_id)
    victim, survivor = worker_factory(env), worker_factory(env)
    results = results_for(topics)
    ids = produce_good_events(topics.input, EVENTS, "k9")

    # When one worker is killed with SIGKILL while results are still being produced
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), victim.log_tail()
    victim.signal(signal.SIGKILL)
    print(f"handled when killed: {len(results.handled_ids())}/{EVENTS}")

    # Then the survivor takes over and count(in) == distinct(out) + dlq: every event, nothing else
    done = results.wait_for(lambda r: r.handled_ids() >= set(ids), RESULTS_TIMEOUT_S, workers=(survivor,))
    assert done, f"missing {sorted(set(ids) - results.handled_ids())[:10]}\n{survivor.log_tail()}"
    assert results.handled_ids() == set(ids)
    assert survivor.alive()


def test_sigterm_drains_publishes_and_commits(broker, topics, group_id, worker_factory, results_for,
                                              worker_env_for, produce_good_events):
    # Given a worker busy with events
    env = worker_env_for(topics, group_id)
    worker = worker_factory(env)
    results = results_for(topics)
    ids = produce_good_events(topics.input, EVENTS, "term")
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), worker.log_tail()

    # When it receives SIGTERM
    worker.signal(signal.SIGTERM)

    # Then it exits 0, and every offset it committed covers only events whose result was published
    assert worker.wait() == 0, worker.log_tail()
    results.wait_for(lambda r: False, 1.0)  # collect everything published before the exit
    committed = committed_offsets(broker, group_id, topics.input)
    assert committed, "a drained worker must have committed offsets"
    for partition, offset in committed.items():
        unpublished = [vid for vid in keys_below(broker, topics.input, partition, offset)
                       if vid not in results.handled_ids()]
        assert unpublished == [], f"partition {partition}: committed past unpublished {unpublished[:5]}"

    # And a new worker in the group finishes the rest: nothing lost
    successor = worker_factory(env)
    assert results.wait_for(lambda r: r.handled_ids() >= set(ids), RESULTS_TIMEOUT_S, workers=(successor,))
