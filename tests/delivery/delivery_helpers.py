"""Helpers of the delivery tests: topics, worker environments, producing events, reading results back."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_tagger.testing.broker import LocalBroker, free_port, kafka_timeouts
from stream_tagger.testing.committed_log import CommittedView, read_committed_log

sys.path.insert(0, str(Path(__file__).parents[1] / "worker"))
from worker_helpers import Worker, wait_until

PARTITIONS = 4


@dataclass(frozen=True)
class Topics:
    input: str
    output: str
    dlq: str


def make_topics(broker: LocalBroker) -> Topics:
    tag = uuid.uuid4().hex[:8]
    names = Topics(f"videos.new-{tag}", f"videos.tags-{tag}", f"videos.dlq-{tag}")
    for name in (names.input, names.output, names.dlq):
        broker.create_topic(name, PARTITIONS)
    return names


def worker_env(broker: LocalBroker, topics: Topics, group: str, media: Path, engines: Path,
               **overrides: str) -> dict[str, str]:
    """A `stream-tagger run` environment: fast group timeouts, one decode thread, one ORT thread."""
    settings = {
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_INPUT_TOPIC": topics.input,
        "STREAM_TAGGER_OUTPUT_TOPIC": topics.output,
        "STREAM_TAGGER_DLQ_TOPIC": topics.dlq,
        "STREAM_TAGGER_GROUP_ID": group,
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(media)]),
        "STREAM_TAGGER_ENGINE_DIR": str(engines),
        "STREAM_TAGGER_BACKEND": "onnxruntime",
        "STREAM_TAGGER_METRICS_PORT": str(free_port()),
        "STREAM_TAGGER_METRICS_HOST": "127.0.0.1",
        "STREAM_TAGGER_LAG_INTERVAL_S": "0.5",
        "STREAM_TAGGER_ORT_THREADS": "1",
        "STREAM_TAGGER_DECODE_WORKERS": "1",
        "STREAM_TAGGER_RELOAD_INTERVAL_S": "0",
        "STREAM_TAGGER_COMMIT_INTERVAL_MS": "100",
        "STREAM_TAGGER_RECONNECT_BACKOFF_MAX_MS": "1000",
        "STREAM_TAGGER_KAFKA_CALL_TIMEOUT_MS": "3000",
        **{f"STREAM_TAGGER_{key.upper()}": str(value) for key, value in kafka_timeouts().items()},
        **overrides,
    }
    return {**os.environ, **settings}


def produce_events(broker: LocalBroker, topic: str, media: Path, ids: list[str]) -> None:
    """One event per id, keyed by video_id, every one acknowledged before this returns."""
    producer = KafkaProducer(**broker.client_config(acks="all"))
    try:
        uri = (media / "clip.mp4").as_uri()
        for video_id in ids:
            event = {"video_id": video_id, "uri": uri, "title": f"clip {video_id}"}
            producer.send(topic, key=video_id.encode(), value=json.dumps(event).encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def committed_view(broker: LocalBroker, topics: Topics) -> tuple[CommittedView, CommittedView]:
    """Output and DLQ topics as a read_committed consumer sees them (aborted transactions removed)."""
    return (read_committed_log(broker.plaintext_address, topics.output, PARTITIONS),
            read_committed_log(broker.plaintext_address, topics.dlq, PARTITIONS))


def video_ids(view: CommittedView) -> list[str]:
    return [json.loads(record.value)["video_id"] for record in view.committed]


def wait_for_committed(broker: LocalBroker, topics: Topics, expected: set[str], timeout_s: float,
                       workers: tuple[Worker, ...] = ()) -> tuple[list[str], list[str]]:
    """Read committed tag and DLQ video_ids until every expected id is there (or the deadline)."""
    def done() -> bool:
        nonlocal tags, dlq
        out, failed = committed_view(broker, topics)
        tags, dlq = video_ids(out), video_ids(failed)
        return set(tags) | set(dlq) >= expected or (workers and not any(w.process.poll() is None for w in workers))

    tags: list[str] = []
    dlq: list[str] = []
    wait_until(done, timeout_s=timeout_s, step_s=0.5)
    return tags, dlq


def read_all(broker: LocalBroker, topic: str, isolation_level: str, timeout_s: float = 5.0) -> list[dict]:
    """Every record of ``topic`` through a stock kafka-python consumer (no group)."""
    # a long fetch wait: after a restart Tansu reads the log back from S3, slower than 10 ms
    consumer = KafkaConsumer(**broker.client_config(enable_auto_commit=False, fetch_max_wait_ms=500,
                                                    isolation_level=isolation_level))
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    records: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(json.loads(r.value) for r in batch)
    finally:
        consumer.close(autocommit=False)
    return records
