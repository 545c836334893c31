"""librdkafka (the C client kcat is built on) interoperates with kafka-python through the local broker.

Debian's kcat 1.7.1 bundles librdkafka 2.0.2, which cannot parse Tansu 0.6's ApiVersions reply
(/work/shared/MEASURED.md); the confluent-kafka wheel's newer librdkafka can, so it stands in for kcat
here. The kcat commands for a real Kafka cluster are in docs/kcat.md.
"""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer

from stream_tagger.testing.broker import kafka_timeouts

confluent_kafka = pytest.importorskip("confluent_kafka")

EVENT = {"video_id": "v-123", "uri": "file:///media/v-123.mp4", "title": "Breaking: bridge opens",
         "description": "", "published_at": "2026-11-22T10:00:00Z", "author_id": "a-9", "trace_id": "t-1"}


def librdkafka_consume(bootstrap: str, topic: str, group_id: str, count: int, timeout_s: float = 30.0) -> list:
    """Read ``count`` messages with a librdkafka group consumer (bounded by ``timeout_s``)."""
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": group_id, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    messages: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                messages.append(message)
        if messages:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return messages


def test_librdkafka_produces_an_event_that_kafka_python_reads(broker, topic_factory, consumer_factory,
                                                              poll_records):
    # Given an input topic with 4 partitions
    topic = topic_factory(partitions=4, prefix="videos.new")

    # When librdkafka produces one input event keyed by video_id, waiting for the broker's ack
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    delivered: list = []
    producer.produce(topic, key=EVENT["video_id"], value=json.dumps(EVENT),
                     on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(10) == 0

    # Then the delivery succeeded and a kafka-python group consumer reads the same key and JSON
    ((error, _message),) = delivered
    assert error is None
    (record,) = poll_records(consumer_factory(topic, group_id="py-readers"), 1)
    assert record.key == b"v-123"
    assert json.loads(record.value) == EVENT


def test_librdkafka_group_consumer_reads_what_kafka_python_produced(broker, topic_factory, producer_factory,
                                                                    group_id):
    # Given 8 keyed records produced by kafka-python over 4 partitions
    topic = topic_factory(partitions=4, prefix="videos.tags")
    producer = producer_factory()
    sent = {f"v-{index}": json.dumps({"video_id": f"v-{index}", "schema_version": 1}) for index in range(8)}
    for key, value in sent.items():
        producer.send(topic, key=key.encode(), value=value.encode())
    producer.flush(timeout=10)

    # When a librdkafka consumer group reads the topic
    messages = librdkafka_consume(broker.bootstrap, topic, group_id, count=len(sent))

    # Then it got every record once, with its key, from all 4 partitions
    received = {message.key().decode(): message.value().decode() for message in messages}
    assert len(messages) == len(sent)
    assert received == sent
    assert {message.partition() for message in messages} <= set(range(4))


def test_librdkafka_over_sasl_ssl_and_its_clear_error(secure_broker, tls_files, sasl_login, poll_records):
    # Given a topic behind TLS + SCRAM-SHA-256, and librdkafka settings for it (docs/operations.md)
    topic = secure_broker.create_topic("secure.videos.new.rdkafka", 1)
    user, password = sasl_login
    config = {"bootstrap.servers": secure_broker.bootstrap, "security.protocol": "SASL_SSL",
              "ssl.ca.location": str(tls_files.cafile), "sasl.mechanisms": "SCRAM-SHA-256",
              "sasl.username": user, "sasl.password": password, "acks": "all"}

    # When librdkafka produces with them, and once more with a wrong password
    delivered: list = []
    producer = confluent_kafka.Producer(config)
    producer.produce(topic, key=EVENT["video_id"], value=json.dumps(EVENT),
                     on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(15) == 0
    errors: list = []
    refused = confluent_kafka.Producer({**config, "sasl.password": "wrong", "error_cb": errors.append,
                                        "message.timeout.ms": 3000})
    refused.produce(topic, value=b"never")
    refused.flush(5)

    # Then the first arrives (read by kafka-python over SASL_SSL); the second is refused as an auth failure
    assert delivered == [None]
    reader = KafkaConsumer(topic, **secure_broker.client_config(group_id="rdkafka-readers", auto_offset_reset="earliest",
                                                                 enable_auto_commit=False, **kafka_timeouts()))
    try:
        (record,) = poll_records(reader, 1)
    finally:
        reader.close(autocommit=False)
    assert json.loads(record.value) == EVENT
    assert any("Authentication failed" in str(error) or error.code() == confluent_kafka.KafkaError._AUTHENTICATION
               for error in errors), errors
