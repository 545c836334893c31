"""``stream-tagger demo``: local broker → synthetic clips → events → worker → tag records → metrics."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from stream_tagger.kafka.worker import run_worker
from stream_tagger.metrics import Metrics
from stream_tagger.settings import Settings
from stream_tagger.testing.broker import LocalBroker, kafka_timeouts
from video_world.dataset import generate_dataset

RESULTS_TIMEOUT_S = 90.0


def make_clips(folder: Path, count: int) -> list[dict[str, Any]]:
    """Labelled clips of the synthetic world (the engines' embedded default)."""
    rows = generate_dataset(folder, clips=count, seed=20261124, workers=2)
    return [{**row, "path": str(folder / row["file"])} for row in rows]


def run_demo(base: Settings, clips: int) -> int:
    started = time.monotonic()
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="stream-tagger-demo-") as tmp:
        settings = _demo_settings(base, broker, Path(tmp))
        for topic, partitions in (
            (settings.input_topic, 4),
            (settings.output_topic, 1),
            (settings.dlq_topic, 1),
        ):
            broker.create_topic(topic, partitions)
        rows = make_clips(Path(tmp) / "clips", clips)
        print(
            f"# {len(rows)} clips generated in {time.monotonic() - started:.1f}s; broker {broker.bootstrap}"
        )
        _publish(settings, rows)
        metrics, stop = Metrics(), threading.Event()
        worker = threading.Thread(target=run_worker, args=(settings, stop, False, metrics), daemon=True)
        worker.start()
        records = _collect(settings, len(rows))
        stop.set()
        worker.join(timeout=30)
        _report(rows, records, metrics, time.monotonic() - started)
    return 0 if len(records) == len(rows) else 1


def _demo_settings(base: Settings, broker: LocalBroker, media: Path) -> Settings:
    suffix = uuid.uuid4().hex[:6]
    return base.model_copy(
        update={
            "brokers": broker.bootstrap,
            "input_topic": f"videos.new.{suffix}",
            "output_topic": f"videos.tags.{suffix}",
            "dlq_topic": f"videos.tags.dlq.{suffix}",
            "group_id": f"demo-{suffix}",
            "uri_roots": [media.resolve()],
            "metrics_port": 0,
            **kafka_timeouts(),
        }
    )


def _publish(settings: Settings, rows: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(**settings.producer_kwargs())
    for row in rows:
        event = {
            "video_id": row["clip_id"],
            "uri": Path(row["path"]).resolve().as_uri(),
            "title": row["title"],
            "trace_id": uuid.uuid4().hex,
        }
        producer.send(settings.input_topic, key=row["clip_id"].encode(), value=json.dumps(event).encode())
    producer.flush(timeout=10)
    producer.close()


def _collect(settings: Settings, count: int) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        settings.output_topic,
        settings.dlq_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        **settings.as_kafka_kwargs(),
    )
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + RESULTS_TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(json.loads(message.value) for message in batch)
    finally:
        consumer.close(autocommit=False)
    return records


def _report(rows: list[dict], records: list[dict], metrics: Metrics, seconds: float) -> None:
    truth = {row["clip_id"]: row for row in rows}
    for record in sorted(records, key=lambda r: str(r.get("video_id"))):
        print(json.dumps(record, ensure_ascii=False))
    hits = [
        r["category"]["label"] == truth[r["video_id"]].get("category")
        for r in records
        if "category" in r and truth.get(r.get("video_id"), {}).get("category")
    ]
    print("# metrics:", json.dumps(metrics.summary()))
    if hits:
        print(f"# category matches synthetic label: {sum(hits)}/{len(hits)}")
    print(f"# {len(records)}/{len(rows)} records in {seconds:.1f}s total")
