"""Shared by the worker's Kafka tests: a `stream-tagger run` subprocess, its settings, reading a topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream_tagger.testing.broker import free_port, kafka_timeouts

PARTITIONS = 4
TIMEOUT_S = 30.0


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["STREAM_TAGGER_METRICS_PORT"])
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_tagger.cli", "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def metric_sum(self, name: str) -> float:
        _, text = self.get("/metrics")
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_until(condition, timeout_s: float = TIMEOUT_S, step_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def worker_env(broker, topics: dict[str, str], group: str, media: Path, engines: Path) -> dict[str, str]:
    timeouts = kafka_timeouts()
    return {
        **os.environ,
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_INPUT_TOPIC": topics["input"],
        "STREAM_TAGGER_OUTPUT_TOPIC": topics["output"],
        "STREAM_TAGGER_DLQ_TOPIC": topics["dlq"],
        "STREAM_TAGGER_GROUP_ID": group,
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(media)]),
        "STREAM_TAGGER_ENGINE_DIR": str(engines),
        "STREAM_TAGGER_METRICS_PORT": str(free_port()),
        "STREAM_TAGGER_METRICS_HOST": "127.0.0.1",
        "STREAM_TAGGER_LAG_INTERVAL_S": "0.5",
        "STREAM_TAGGER_ORT_THREADS": "1",
        "STREAM_TAGGER_DECODE_WORKERS": "1",
        **{f"STREAM_TAGGER_{key.upper()}": str(value) for key, value in timeouts.items()},
    }


def read_topic(broker, topic: str, enough: Callable[[list[dict]], bool]) -> list[dict]:
    """Records of ``topic`` from the beginning, read until ``enough(records)`` or the timeout."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    records: list[dict] = []
    try:
        wait_until(
            lambda: (
                records.extend(
                    json.loads(m.value) for batch in consumer.poll(timeout_ms=200).values() for m in batch
                )
                or enough(records)
            )
        )
    finally:
        consumer.close(autocommit=False)
    return records
