"""kcat stand-in: a librdkafka client produces an input event and reads the worker's tag record.

Debian's kcat cannot talk to Tansu 0.6 (MEASURED.md); the confluent-kafka wheel's librdkafka can.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from worker_helpers import Worker, wait_until, worker_env

confluent_kafka = pytest.importorskip("confluent_kafka")


def test_librdkafka_event_in_tag_record_out(
    broker, topic_factory, tmp_path, group_id, clip_dir, tiny_engine_dir, validate_tag_record
):
    # Given a worker
    topics = {
        "input": topic_factory(4, "videos.new"),
        "output": topic_factory(4, "videos.tags"),
        "dlq": topic_factory(4, "videos.dlq"),
    }
    worker = Worker(worker_env(broker, topics, group_id, clip_dir, tiny_engine_dir), tmp_path / "worker.log")
    try:
        assert wait_until(lambda: worker.get("/readyz")[0] == 200), worker.log_tail()

        # When librdkafka produces an event
        event = {"video_id": "rdk-1", "uri": (clip_dir / "synth-001.mp4").as_uri(), "title": "Live: match"}
        producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        producer.produce(topics["input"], key=event["video_id"], value=json.dumps(event))
        assert producer.flush(10) == 0

        # Then a librdkafka consumer reads the tag record, keyed by video_id
        message = consume_one(broker.bootstrap, topics["output"])
        assert message is not None, worker.log_tail()
        assert message.key() == b"rdk-1"
        validate_tag_record(json.loads(message.value()))
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
    finally:
        worker.kill()


def consume_one(bootstrap: str, topic: str, timeout_s: float = 30.0):
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"rdk-{topic}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                return message
    finally:
        consumer.close()
    return None
