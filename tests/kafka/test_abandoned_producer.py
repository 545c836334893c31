"""An exactly-once worker abandons a transactional producer whose broker stopped answering, without dying."""

from __future__ import annotations

import time

from kafka import KafkaProducer

from stream_tagger.kafka.transactions import _discard
from stream_tagger.testing.broker import LocalBroker


def test_a_producer_holding_records_for_a_silent_broker_is_discarded_without_raising():
    with LocalBroker() as broker:
        topic = broker.create_topic("abandoned", 1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="abandoned-1")
        producer.init_transactions()
        producer.begin_transaction()
        # Given a transaction holding a record the broker can no longer take (frozen: nothing answers)
        broker.pause()
        try:
            producer.send(topic, b"never committed")
            # When the worker gives the producer up (a failed commit: _reset; a revoked partition; shutdown)
            started = time.monotonic()
            _discard(producer)
            # Then it returns at once, and the producer's sender thread is stopped, not left sending
            assert time.monotonic() - started < 5
            producer._sender.join(5)
            assert not producer._sender.is_alive()
        finally:
            broker.resume()
