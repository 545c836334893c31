"""Helpers of the memory-writer tests: thinning a bank, settings, processes, reading topics and groups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream_tagger.feedback.writer import run_memory_writer
from stream_tagger.metrics import MemoryMetrics
from stream_tagger.settings import Settings
from stream_tagger.testing.broker import free_port, kafka_timeouts

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0
THINNED = "u_turn"
EVAL_PER_CLASS = 2
CONFIRM, HELD_OUT, POISON = 6, 6, 6
POISON_SOURCE, POISON_LABEL = "turn_right", "lane_change"


def settings_env(
    broker, topic: str, engines: Path, media: Path, eval_dir: Path, **extra: Any
) -> dict[str, str]:
    """STREAM_TAGGER_* of one writer (or worker) on ``topic`` (DLQ: ``topic.dlq``)."""
    timeouts = kafka_timeouts()
    values = {
        "brokers": broker.bootstrap,
        "confirmed_topic": topic,
        "confirmed_dlq_topic": f"{topic}.dlq",
        "memory_group_id": f"memory-{topic}",
        "engine_dir": str(engines),
        "uri_roots": json.dumps([str(media)]),
        "memory_eval_set": str(eval_dir),
        "metrics_host": "127.0.0.1",
        "metrics_port": str(free_port()),
        "ort_threads": "1",
        "decode_workers": "1",
        "reload_interval_s": "0.5",
        "lag_interval_s": "0.5",
        **{key: str(value) for key, value in timeouts.items()},
        **{key: str(value) for key, value in extra.items()},
    }
    return {f"STREAM_TAGGER_{key.upper()}": value for key, value in values.items()}


class InProcessWriter:
    """``run_memory_writer`` on a thread, with its metrics object at hand."""

    def __init__(self, env: dict[str, str]) -> None:
        self.settings = Settings(**self.fields(env))
        self.metrics = MemoryMetrics()
        self.stop_event = threading.Event()
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def fields(env: dict[str, str]) -> dict[str, Any]:
        """Settings keyword arguments from ``settings_env``'s variables."""
        return {
            key.removeprefix("STREAM_TAGGER_").lower(): json.loads(value) if value.startswith("[") else value
            for key, value in env.items()
        }

    def _run(self) -> None:
        self.status = run_memory_writer(
            self.settings, self.stop_event, install_signals=False, metrics=self.metrics
        )

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels or None) or 0.0

    def stop(self) -> int | None:
        self.stop_event.set()
        self.thread.join(60)
        return self.status


class Process:
    """A ``stream-tagger <command>`` subprocess with its metrics port and log file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["STREAM_TAGGER_METRICS_PORT"])
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream_tagger.cli", command],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def metric(self, name: str, **labels: str) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return -1.0
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def wait_until(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S, step_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def produce(broker, topic: str, payloads: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for payload in payloads:
        producer.send(topic, payload, key=uuid.uuid4().hex.encode())
    producer.flush(timeout=20)
    producer.close()


def read_topic(
    broker, topic: str, count: int, partitions: int = 1, timeout_s: float = TIMEOUT_S
) -> list[dict]:
    """The first ``count`` JSON records of ``topic`` (fewer if the timeout passes)."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    records: list[dict] = []
    try:
        wait_until(
            lambda: (
                records.extend(
                    json.loads(m.value) for batch in consumer.poll(timeout_ms=200).values() for m in batch
                )
                or len(records) >= count
            ),
            timeout_s,
        )
    finally:
        consumer.close(autocommit=False)
    return records


def committed_offset(broker, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close(autocommit=False)
