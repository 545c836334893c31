"""Kafka plumbing shared by the benchmarks: a broker, events in, tag records out with arrival times."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from bench.videos import Video


@dataclass
class ExternalBroker:
    """A broker someone else runs (``--bootstrap``); topics are made with the admin client."""

    bootstrap: str

    def create_topic(self, name: str, partitions: int = 1) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            if name not in admin.list_topics():
                admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()


@contextlib.contextmanager
def broker(bootstrap: str | None = None) -> Iterator:
    """The project's real local broker (Tansu), or an external one when ``bootstrap`` is given."""
    if bootstrap:
        yield ExternalBroker(bootstrap)
        return
    from stream_tagger.testing.broker import LocalBroker

    with LocalBroker() as local:
        yield local


def make_event(video: Video, video_id: str) -> dict:
    """An input event as DESIGN §2 has it, plus the send time (unknown fields are kept, not rejected)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "video_id": video_id,
        "uri": video.path.as_uri(),
        "title": f"Benchmark clip {video.name}",
        "published_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "bench_sent_at": time.time(),
    }


def producer(bootstrap: str, **overrides) -> KafkaProducer:
    options = {"acks": "all", "linger_ms": 1} | overrides
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=str.encode,
        value_serializer=lambda v: json.dumps(v).encode(),
        **options,
    )


def send_events(bootstrap: str, topic: str, events: list[dict]) -> None:
    """Produce ``events`` as fast as the broker acknowledges them (not part of any timing)."""
    sender = producer(bootstrap)
    try:
        for event in events:
            sender.send(topic, key=event["video_id"], value=event)
        sender.flush()
    finally:
        sender.close()


class RecordCollector:
    """Reads output topics from the beginning in a thread; remembers when each video_id arrived.

    No consumer group (partitions assigned by hand), so it starts reading at once, and a short
    fetch wait so the arrival time is the record's, not the poll loop's. Polling that often costs:
    measured idle on the 2-core machine, 0.16 cores in this process and 0.09 in the local broker, taken
    from the worker under test. Throughput needs no arrival times, only when each record was made:
    :meth:`paced` polls twice a second instead, and ``produced`` (the record's CreateTime, stamped by
    the worker's producer on this host's clock) times the completions.
    """

    def __init__(self, bootstrap: str, topics: list[str], isolation_level: str = "read_uncommitted") -> None:
        self.arrivals: dict[str, float] = {}
        #: video_id -> the record's CreateTime (time.time() seconds of the worker's send).
        self.produced: dict[str, float] = {}
        self.records: dict[str, dict] = {}
        self.failed: set[str] = set()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._pause_between_polls_s = 0.0
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, fetch_max_wait_ms=10, enable_auto_commit=False,
            isolation_level=isolation_level,  # read_committed: what an exactly-once consumer downstream sees
        )
        self._topics = topics
        self._assign()
        self._thread = threading.Thread(target=self._run, name="bench-collector", daemon=True)
        self._thread.start()

    def wait_for(self, video_ids: list[str], timeout_s: float) -> bool:
        """True once every id has a record (tag or DLQ); False at the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(i in self.arrivals for i in video_ids):
                return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()

    def _assign(self) -> None:
        partitions = []
        for topic in self._topics:
            found = None
            for _ in range(100):  # metadata for a just-created topic can lag a little
                found = self._consumer.partitions_for_topic(topic)
                if found:
                    break
                time.sleep(0.05)
            partitions += [TopicPartition(topic, p) for p in sorted(found or {0})]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)

    def pause(self) -> None:
        """Stop fetching (no broker round trips) until ``resume``: nothing is expected meanwhile."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @contextlib.contextmanager
    def paced(self, seconds: float = 0.5) -> Iterator[None]:
        """Poll only every ``seconds`` meanwhile (arrival times that coarse; ``produced`` stays exact)."""
        self._pause_between_polls_s = seconds
        try:
            yield
        finally:
            self._pause_between_polls_s = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._paused.is_set() or self._pause_between_polls_s:
                time.sleep(self._pause_between_polls_s or 0.05)
                if self._paused.is_set():
                    continue
            for tp, messages in self._consumer.poll(timeout_ms=50).items():
                arrived = time.time()
                for message in messages:
                    created = message.timestamp / 1000 if (message.timestamp or -1) >= 0 else arrived
                    self._keep(tp.topic, message.value, arrived, created)

    def _keep(self, topic: str, value: bytes, arrived: float, created: float) -> None:
        try:
            record = json.loads(value)
        except ValueError:
            return
        video_id = record.get("video_id") or _dlq_video_id(record)
        if video_id is None:
            return
        self.arrivals.setdefault(video_id, arrived)
        self.produced.setdefault(video_id, created)
        self.records.setdefault(video_id, record)
        if "dlq" in topic:
            self.failed.add(video_id)


def _dlq_video_id(record: dict) -> str | None:
    """A DLQ record carries the original event as base64; its key is the video_id."""
    import base64

    for field in ("original", "value", "original_value"):
        if isinstance(record.get(field), str):
            try:
                return json.loads(base64.b64decode(record[field])).get("video_id")
            except (ValueError, AttributeError):
                continue
    return None
