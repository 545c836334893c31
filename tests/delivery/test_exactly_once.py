"""Exactly-once delivery under faults, on a durable broker and real `stream-tagger run` processes.

A read_committed reader must see each video_id's record exactly once (tag or DLQ), nothing lost,
through a kill -9 of a worker, a broker kill -9 + restart, and a zombie worker that comes back.

The reader is ``stream_tagger.testing.committed_log``: Tansu 0.6.0 does not list aborted transactions
in Fetch responses, so a stock read_committed client would also show aborted records (each test says
how many it found); the log reader applies the transactions' commit/abort markers as Kafka does.
"""

from __future__ import annotations

import collections
import signal
import time
import uuid

from delivery_helpers import (
    committed_view,
    make_topics,
    produce_events,
    read_all,
    video_ids,
    wait_for_committed,
    wait_until,
    worker_env,
)

EXACTLY_ONCE = {"STREAM_TAGGER_DELIVERY": "exactly_once"}
#: Small batches and a short in-flight window, so events are mid-way when the faults land.
SLOW = {"STREAM_TAGGER_BATCH_SIZE": "2", "STREAM_TAGGER_MAX_INFLIGHT": "8"}
RESULTS_TIMEOUT_S = 150.0
#: Longer than the group session timeout (6 s, stream_tagger.testing.broker.kafka_timeouts).
FREEZE_S = 9.0


def duplicates(ids: list[str]) -> dict[str, int]:
    return {video_id: count for video_id, count in collections.Counter(ids).items() if count > 1}


def test_two_workers_kill_9_and_broker_restart_each_video_once(durable_broker, engines, media, start_worker):
    # Given two exactly-once workers in one group and 300 events over 4 partitions
    broker, topics, group = durable_broker, make_topics(durable_broker), f"eos-{uuid.uuid4().hex[:6]}"
    env = worker_env(broker, topics, group, media, engines, **EXACTLY_ONCE, **SLOW)
    victim, survivor = start_worker(env), start_worker(env)
    ids = [f"eos-{index}" for index in range(300)]
    produce_events(broker, topics.input, media, ids)

    # When one worker is killed with SIGKILL mid-run, and then the broker is killed and restarted
    assert wait_until(lambda: victim.metric_sum("stream_tagger_transactions_total") >= 3, 90), victim.log_tail()
    victim.kill()
    assert wait_until(lambda: len(set(video_ids(committed_view(broker, topics)[0]))) >= 100, 90), survivor.log_tail()
    broker.kill()
    time.sleep(1.0)
    broker.restart()

    # Then the survivor, never restarted, finishes; read_committed sees every video_id exactly once
    tags, dlq = wait_for_committed(broker, topics, set(ids), RESULTS_TIMEOUT_S, workers=(survivor,))
    assert survivor.process.poll() is None, survivor.log_tail()
    assert duplicates(tags + dlq) == {}, survivor.log_tail()
    assert set(tags) | set(dlq) == set(ids), f"missing {sorted(set(ids) - set(tags) - set(dlq))[:10]}"
    assert dlq == [], "a good clip went to the DLQ"
    out, _ = committed_view(broker, topics)
    stock = [r["video_id"] for r in read_all(broker, topics.output, "read_committed")]
    print(f"aborted records in the log: {len(out.aborted)}; a stock read_committed client read {len(stock)} "
          f"records ({len(stock) - len(set(stock))} duplicates: Tansu lists no aborted transactions)")


def test_a_frozen_worker_that_comes_back_commits_nothing_twice(durable_broker, engines, media, start_worker):
    # Given two exactly-once workers busy with 120 events
    broker, topics, group = durable_broker, make_topics(durable_broker), f"zombie-{uuid.uuid4().hex[:6]}"
    env = worker_env(broker, topics, group, media, engines, **EXACTLY_ONCE, **SLOW)
    zombie, survivor = start_worker(env), start_worker(env)
    ids = [f"zombie-{index}" for index in range(120)]
    produce_events(broker, topics.input, media, ids)
    assert wait_until(lambda: zombie.metric_sum("stream_tagger_transactions_total") >= 2, 90), zombie.log_tail()

    # When one is frozen (SIGSTOP) past the session timeout, so the group hands its partitions over,
    # and then thawed with its staged results and old producers
    zombie.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(FREEZE_S)
    finally:
        zombie.process.send_signal(signal.SIGCONT)

    # Then each video_id is committed exactly once, nothing lost, and both processes are still up
    tags, dlq = wait_for_committed(broker, topics, set(ids), RESULTS_TIMEOUT_S, workers=(survivor,))
    assert duplicates(tags + dlq) == {}, zombie.log_tail()
    assert set(tags) | set(dlq) == set(ids), f"missing {sorted(set(ids) - set(tags) - set(dlq))[:10]}"
    assert zombie.process.poll() is None and survivor.process.poll() is None
    fenced = [line for line in zombie.get("/metrics")[1].splitlines()
              if line.startswith('stream_tagger_transactions_total{outcome="fenced"}')]
    print(f"zombie: {fenced}; aborted records in the log: {len(committed_view(broker, topics)[0].aborted)}")


def test_the_next_owner_of_a_partition_fences_the_zombie(durable_broker):
    # Given the producer a worker uses for input partition 0, with a transaction open and records sent
    from kafka.errors import ProducerFencedError
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from stream_tagger.kafka.transactions import BoundedTransactionalProducer
    from stream_tagger.settings import Settings

    broker, topics = durable_broker, make_topics(durable_broker)
    settings = Settings(brokers=broker.bootstrap, group_id=f"fence-{uuid.uuid4().hex[:6]}", input_topic=topics.input)
    kwargs = settings.transactional_producer_kwargs(topics.input, 0)
    zombie = BoundedTransactionalProducer(**kwargs)
    zombie.init_transactions()
    zombie.begin_transaction()
    zombie.send(topics.output, key=b"v-zombie", value=b'{"video_id": "v-zombie"}').get(timeout=10)

    # When the partition's next owner starts its producer with the same transactional id
    owner = BoundedTransactionalProducer(**kwargs)
    owner.init_transactions()
    owner.begin_transaction()
    owner.send(topics.output, key=b"v-owner", value=b'{"video_id": "v-owner"}')
    owner.send_offsets_to_transaction({TopicPartition(topics.input, 0): OffsetAndMetadata(1, "", -1)}, settings.group_id)
    owner.commit_transaction()

    # Then the zombie cannot commit, and read_committed sees only the owner's record
    try:
        zombie.send_offsets_to_transaction({TopicPartition(topics.input, 0): OffsetAndMetadata(5, "", -1)},
                                           settings.group_id)
        zombie.commit_transaction()
        raise AssertionError("the zombie committed")
    except ProducerFencedError:
        pass
    finally:
        zombie.close(timeout=1)
        owner.close(timeout=1)
    out, _ = committed_view(broker, topics)
    assert video_ids(out) == ["v-owner"]
    assert [json_id(record) for record in out.aborted] == ["v-zombie"]


def json_id(record) -> str:
    import json

    return json.loads(record.value)["video_id"]


def test_a_commit_that_timed_out_after_it_landed_is_never_sent_again(durable_broker):
    # Given an exactly-once delivery whose first commit lands on the broker but times out on the client
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaTimeoutError
    from kafka.structs import TopicPartition

    from stream_tagger.kafka.offsets import OffsetTracker
    from stream_tagger.kafka.rebalance import DropStateOnRebalance
    from stream_tagger.kafka.transactions import BoundedTransactionalProducer, ExactlyOnce
    from stream_tagger.metrics import Metrics
    from stream_tagger.settings import Settings
    from stream_tagger.testing.broker import kafka_timeouts

    class LandsThenTimesOut(BoundedTransactionalProducer):
        timed_out = 0

        def commit_transaction(self) -> None:
            super().commit_transaction()
            if not LandsThenTimesOut.timed_out:
                LandsThenTimesOut.timed_out += 1
                raise KafkaTimeoutError("commit_transaction did not complete within 3000 ms")

    broker, topics = durable_broker, make_topics(durable_broker)
    settings = Settings(brokers=broker.bootstrap, group_id=f"landed-{uuid.uuid4().hex[:6]}",
                        input_topic=topics.input, **kafka_timeouts())
    producer = KafkaProducer(**broker.client_config())
    for index in range(3):
        producer.send(topics.input, value=b"{}", partition=0)
    producer.flush(timeout=10)
    producer.close()
    consumer, tracker = KafkaConsumer(**settings.consumer_kwargs()), OffsetTracker()
    delivery = ExactlyOnce(settings, consumer, tracker, Metrics(), producer_factory=LandsThenTimesOut)
    consumer.subscribe([topics.input], listener=DropStateOnRebalance(delivery, delivery.assigned))
    tp, commits, settle_until = TopicPartition(topics.input, 0), [], None
    try:
        # When it tags what it reads and commits, and goes on for 3 s after the timed-out commit
        deadline = time.monotonic() + 60
        while time.monotonic() < min(deadline, settle_until or deadline):
            if LandsThenTimesOut.timed_out and settle_until is None:
                settle_until = time.monotonic() + 3
            delivery.claim_assigned()
            for partition, records in consumer.poll(timeout_ms=200).items():
                if not delivery.accepts(partition):
                    continue
                for record in records:
                    tracker.add(partition, record.offset)
                    delivery.publish(partition, record.offset, topics.output, f"v-{record.offset}",
                                     {"video_id": f"v-{record.offset}"}, lambda: None, print)
            commits.append(delivery.commit())
        group_offset = consumer.committed(tp)
    finally:
        delivery.close()
        consumer.close()

    # Then each record is committed once, and the group's offset is past all three
    out, _ = committed_view(broker, topics)
    assert LandsThenTimesOut.timed_out == 1 and False in commits
    assert sorted(video_ids(out)) == ["v-0", "v-1", "v-2"]
    assert group_offset == 3
