"""Async produce of tag and DLQ records keyed by video_id; callbacks run once the broker has them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer

from stream_tagger.records import key_bytes, to_json_bytes

OnAck = Callable[[], None]
OnError = Callable[[Exception], None]


class Publisher:
    def __init__(self, producer: KafkaProducer, output_topic: str, dlq_topic: str) -> None:
        self.producer = producer
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic

    def send_tags(self, key: str, record: dict[str, Any], on_ack: OnAck, on_error: OnError) -> None:
        self.send(self.output_topic, key, record, on_ack, on_error)

    def send_dlq(self, key: str | None, record: dict[str, Any], on_ack: OnAck, on_error: OnError) -> None:
        self.send(self.dlq_topic, key, record, on_ack, on_error)

    def send(self, topic: str, key: str | None, record: dict[str, Any], on_ack: OnAck, on_error: OnError) -> None:
        try:
            future = self.producer.send(topic, key=key_bytes(key), value=to_json_bytes(record))
        except Exception as exc:  # e.g. a record over max_request_size: the caller decides
            on_error(exc)
            return
        future.add_callback(lambda _metadata: on_ack())
        future.add_errback(on_error)

    def flush(self, timeout_s: float) -> None:
        self.producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        self.producer.close(timeout=timeout_s)
