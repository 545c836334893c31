"""Fixtures shared by every test folder: one real Kafka-compatible broker and client factories.

The broker is a Tansu process (memory-only) started once per session; each test gets fresh,
uniquely named topics from ``topic_factory``, so tests never see each other's messages.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream_tagger.testing.broker import LocalBroker, kafka_timeouts

_topic_numbers = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """A running local broker shared by the whole session; ``broker.bootstrap`` is ``127.0.0.1:PORT``."""
    with LocalBroker() as local_broker:
        yield local_broker


@pytest.fixture
def topic_factory(broker: LocalBroker) -> Callable[..., str]:
    """``topic_factory(partitions=1, prefix="t")`` creates a topic with a unique name and returns it."""

    def create(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{next(_topic_numbers)}-{uuid.uuid4().hex[:8]}"
        return broker.create_topic(name, partitions)

    return create


@pytest.fixture
def group_id() -> str:
    """A consumer group id no other test uses."""
    return f"group-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def producer_factory(broker: LocalBroker) -> Iterator[Callable[..., KafkaProducer]]:
    """``producer_factory(**config)`` makes a kafka-python producer on the broker; closed after the test."""
    producers: list[KafkaProducer] = []

    def create(**config: Any) -> KafkaProducer:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, **{"acks": "all", **config})
        producers.append(producer)
        return producer

    yield create
    for producer in producers:
        producer.close(timeout=5)


@pytest.fixture
def consumer_factory(broker: LocalBroker) -> Iterator[Callable[..., KafkaConsumer]]:
    """``consumer_factory(*topics, **config)`` makes a kafka-python consumer with the fast group timeouts.

    Defaults: read from the earliest offset, no auto-commit, ``fetch_max_wait_ms=10`` (low latency).
    Closed after the test (tests may close earlier; closing twice is harmless).
    """
    consumers: list[KafkaConsumer] = []

    def create(*topics: str, **config: Any) -> KafkaConsumer:
        defaults = {"auto_offset_reset": "earliest", "enable_auto_commit": False, "fetch_max_wait_ms": 10,
                    **kafka_timeouts()}
        consumer = KafkaConsumer(*topics, bootstrap_servers=broker.bootstrap, **{**defaults, **config})
        consumers.append(consumer)
        return consumer

    yield create
    for consumer in consumers:
        consumer.close(autocommit=False)


def _poll_records(consumers: KafkaConsumer | list[KafkaConsumer], count: int, timeout_s: float = 20.0) -> list:
    """Poll until ``count`` records arrived in total (or the deadline passed); return them all."""
    group = consumers if isinstance(consumers, list) else [consumers]
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for consumer in group:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
    return records


@pytest.fixture
def poll_records() -> Callable[..., list]:
    """``poll_records(consumer_or_list, count, timeout_s=20)``: records polled until ``count`` arrived.

    Returns early with fewer records when the deadline passes, so the test's assertion says what is missing.
    Pass several consumers only when they are already in their groups: joining a group from one thread
    that polls two members in turn can loop forever against Tansu (see tests/kafka/test_broker.py).
    """
    return _poll_records


# ---- a listener that wants TLS and a SASL login, as production's does --------------------------------
SASL_USER, SASL_PASSWORD = "tagger", "correct horse battery staple"


@pytest.fixture(scope="session")
def sasl_login() -> tuple[str, str]:
    """(user, password) that ``secure_broker`` accepts (SCRAM-SHA-256/512 or PLAIN)."""
    return SASL_USER, SASL_PASSWORD


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory):
    """A CA, the server certificate it signed for 127.0.0.1, and an unrelated CA (stream_tagger.testing.certs)."""
    from stream_tagger.testing.certs import make_tls_files

    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def secure_broker(tls_files) -> Iterator[LocalBroker]:
    """SASL_SSL: TLS with the session's CA, then a login as SASL_USER. Served by the local broker's gateway,
    since Tansu 0.6.0 can serve neither itself (stream_tagger/testing/gateway.py)."""
    with LocalBroker(tls=tls_files, sasl_users={SASL_USER: SASL_PASSWORD}) as local_broker:
        yield local_broker


@pytest.fixture(scope="session")
def tls_broker(tls_files) -> Iterator[LocalBroker]:
    """SSL: TLS with the session's CA, no login."""
    with LocalBroker(tls=tls_files) as local_broker:
        yield local_broker
