"""Fixtures for reliability tests: the bad-input corpus, worker subprocesses, and result collection.

Workers run as real ``stream-tagger run`` processes configured through ``STREAM_TAGGER_*`` variables,
against the session's real broker, so signals (kill -9, SIGTERM) hit a real process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream_tagger.testing.broker import LocalBroker, kafka_timeouts

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "corpus"))  # the corpus builder is a script, not a package
from make_corpus import EventCase, MediaCase, build_corpus, event_cases

from stream_tagger.engines.tiny import write_tiny_repository

ENGINES = ("classifier", "timeliness", "early_action")
REPO_ENGINES = TESTS.parent / "engines"

STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Corpus:
    """The built media files (under ``root``) and the hostile input-topic messages."""

    root: Path
    media: list[MediaCase]
    events: list[EventCase]

    def payload(self, case: EventCase) -> bytes:
        return case.payload.replace(b"{media}", str(self.root).encode())

    def uri(self, name: str) -> str:
        return (self.root / name).as_uri()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Every corpus file, built once per session (~2 s) with Debian's ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("the bad-input corpus needs Debian's ffmpeg (apt-get install ffmpeg)")
    root = tmp_path_factory.mktemp("corpus")
    return Corpus(root, build_corpus(root), event_cases())


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's engines/ when all three engines have a version there, else tiny test engines."""
    if all(any((v / "manifest.json").is_file() and (v / "model.onnx").is_file()
               for v in (REPO_ENGINES / name).glob("[0-9]*")) for name in ENGINES):
        return REPO_ENGINES
    return write_tiny_repository(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="session")
def validate_tag_record() -> Callable[[dict], None]:
    schema = json.loads(resources.files("stream_tagger.schemas").joinpath("tag_record.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate


@pytest.fixture(scope="session")
def tag_env(engine_dir: Path) -> dict[str, str]:
    """Environment for ``stream-tagger tag`` (no Kafka)."""
    return {**os.environ, "STREAM_TAGGER_ENGINE_DIR": str(engine_dir), "STREAM_TAGGER_BACKEND": "onnxruntime"}


@dataclass(frozen=True)
class Topics:
    """One input, output and DLQ topic set, unique to a test."""

    input: str
    output: str
    dlq: str


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> Topics:
    return Topics(topic_factory(4, "videos.new"), topic_factory(4, "videos.tags"), topic_factory(4, "videos.dlq"))


def worker_env(broker: LocalBroker, topics: Topics, group_id: str, media_root: Path, engine_dir: Path,
               **overrides: str) -> dict[str, str]:
    """Environment for one ``stream-tagger run`` process (names from stream_tagger/settings.py)."""
    timeouts = kafka_timeouts()
    settings = {
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_INPUT_TOPIC": topics.input,
        "STREAM_TAGGER_OUTPUT_TOPIC": topics.output,
        "STREAM_TAGGER_DLQ_TOPIC": topics.dlq,
        "STREAM_TAGGER_GROUP_ID": group_id,
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(media_root)]),
        "STREAM_TAGGER_ENGINE_DIR": str(engine_dir),
        "STREAM_TAGGER_SESSION_TIMEOUT_MS": str(timeouts["session_timeout_ms"]),
        "STREAM_TAGGER_HEARTBEAT_INTERVAL_MS": str(timeouts["heartbeat_interval_ms"]),
        "STREAM_TAGGER_MAX_POLL_INTERVAL_MS": str(timeouts["max_poll_interval_ms"]),
        "STREAM_TAGGER_METRICS_PORT": "0",
        "STREAM_TAGGER_METRICS_HOST": "127.0.0.1",
        "STREAM_TAGGER_BACKEND": "onnxruntime",
        "STREAM_TAGGER_RELOAD_INTERVAL_S": "0",
        **overrides,
    }
    return {**os.environ, **settings}


@pytest.fixture
def worker_env_for(broker: LocalBroker, corpus: Corpus, engine_dir: Path) -> Callable[..., dict[str, str]]:
    """``worker_env_for(topics, group_id, **overrides)``: a worker's environment for this test's topics."""

    def env(topics: Topics, group_id: str, **overrides: str) -> dict[str, str]:
        return worker_env(broker, topics, group_id, corpus.root, engine_dir, **overrides)

    return env


class WorkerProcess:
    """One ``stream-tagger run`` subprocess; output goes to a log file so a full pipe never blocks it."""

    def __init__(self, env: dict[str, str], log_path: Path, argv: list[str] | None = None) -> None:
        self.log_path = log_path
        self.port = int(env.get("STREAM_TAGGER_METRICS_PORT", "0"))
        argv = argv or ["-m", "stream_tagger.cli", "run"]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, *argv], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def http_status(self, path: str) -> int:
        """Status of GET ``path`` on the worker's HTTP port (0 when nothing answers)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` (with these labels) in the worker's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
            text = response.read().decode()
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        return self.process.wait(timeout_s)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_S)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``worker_factory(env, argv=None)`` starts a worker; every worker still alive is killed after the test."""
    workers: list[WorkerProcess] = []

    def start(env: dict[str, str], argv: list[str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log", argv)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


class Results:
    """Reads a test's output and DLQ topics from the beginning (no group: reading commits nothing)."""

    def __init__(self, broker: LocalBroker, topics: Topics) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                      fetch_max_wait_ms=10)
        partitions = [TopicPartition(t, p) for t in (topics.output, topics.dlq) for p in range(4)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning()
        self.topics = topics
        self.tags: list[dict] = []
        self.dlq: list[dict] = []

    def poll(self) -> None:
        for partition, records in self.consumer.poll(timeout_ms=200).items():
            target = self.tags if partition.topic == self.topics.output else self.dlq
            target.extend(json.loads(record.value) for record in records)

    def wait_for(self, done: Callable[[Results], bool], timeout_s: float,
                 workers: tuple[WorkerProcess, ...] = ()) -> bool:
        """Poll until ``done(self)``, the deadline, or every one of ``workers`` has exited."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if done(self) or (workers and not any(worker.alive() for worker in workers)):
                break
        return done(self)

    def tagged_ids(self) -> set[str]:
        return {record["video_id"] for record in self.tags}

    def handled_ids(self) -> set[str]:
        """video_ids that ended as a tag record or a DLQ record."""
        return self.tagged_ids() | {record.get("video_id") for record in self.dlq}

    def close(self) -> None:
        self.consumer.close(autocommit=False)


@pytest.fixture
def results_for(broker: LocalBroker) -> Iterator[Callable[[Topics], Results]]:
    opened: list[Results] = []

    def open_results(topics: Topics) -> Results:
        opened.append(Results(broker, topics))
        return opened[-1]

    yield open_results
    for results in opened:
        results.close()


@pytest.fixture
def produce_good_events(corpus: Corpus, producer_factory: Callable[..., object]) -> Callable[..., list[str]]:
    """``produce_good_events(topic, count, prefix)``: events for good.mp4 keyed by video_id; returns the ids."""
    producer = producer_factory()

    def produce(topic: str, count: int, prefix: str) -> list[str]:
        ids = [f"{prefix}-{index}" for index in range(count)]
        for video_id in ids:
            event = {"video_id": video_id, "uri": corpus.uri("good.mp4"), "title": f"clip {video_id}"}
            producer.send(topic, key=video_id.encode(), value=json.dumps(event).encode())
        producer.flush(timeout=10)
        return ids

    return produce


def committed_offsets(broker: LocalBroker, group_id: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (partitions never committed are left out)."""
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        offsets = {p: reader.committed(TopicPartition(topic, p)) for p in reader.partitions_for_topic(topic)}
    finally:
        reader.close(autocommit=False)
    return {partition: offset for partition, offset in offsets.items() if offset is not None}


def keys_below(broker: LocalBroker, topic: str, partition: int, end_offset: int) -> list[str]:
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


def unpublished_below_commits(broker: LocalBroker, topic: str, committed: dict[int, int],
                              handled: set[str]) -> dict[int, list[str]]:
    """Per partition, the events below the committed offset that have neither a tag nor a DLQ record."""
    missing = {p: [k for k in keys_below(broker, topic, p, offset) if k not in handled]
               for p, offset in committed.items()}
    return {partition: keys for partition, keys in missing.items() if keys}


@pytest.fixture
def offsets_check(broker: LocalBroker) -> Callable[..., tuple[dict[int, int], dict[int, list[str]]]]:
    """``offsets_check(topic, group_id, handled_ids)`` -> (committed offsets, unpublished events below them)."""

    def check(topic: str, group: str, handled: set[str]) -> tuple[dict[int, int], dict[int, list[str]]]:
        committed = committed_offsets(broker, group, topic)
        return committed, unpublished_below_commits(broker, topic, committed, handled)

    return check
