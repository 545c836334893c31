"""End to end on the real broker: 200 events, 4 partitions, two `stream-tagger run` processes in one group.

Clips come from the trainer's synthetic world (labelled); 200 events reuse a few clips so generation stays
short, and every event keeps its clip's labels. With the real engines in ./engines the tags are checked
against the labels; otherwise tiny contract engines are served and only the plumbing is checked.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from worker_helpers import PARTITIONS, Worker, read_topic, wait_until, worker_env

from stream_tagger.engines.manifest import ENGINE_NAMES, EngineManifest
from stream_tagger.engines.repository import list_versions

EVENTS, CLIPS = 200, 12
REPO_ENGINES = Path(__file__).parents[2] / "engines"


def real_engines_present() -> bool:
    return all(list_versions(REPO_ENGINES / name) for name in ENGINE_NAMES)


@pytest.fixture(scope="module")
def world_clips(tmp_path_factory) -> tuple[Path, list[dict]]:
    generate = pytest.importorskip("video_world.dataset").generate_dataset
    root = tmp_path_factory.mktemp("world")
    return root, generate(root, clips=CLIPS, seed=424242, workers=2)


def committed_lag(broker, group: str, topic: str, ends: dict[int, int]) -> dict[int, int]:
    """Per partition: end offset (from the produce acks) minus the group's committed offset.

    The acks, not ListOffsets: Tansu 0.6 answers ListOffsets with the last batch's base offset + 1.
    """
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        committed = {
            tp.partition: meta.offset
            for tp, meta in admin.list_group_offsets(group)[group].items()
            if tp.topic == topic
        }
    finally:
        admin.close()
    return {partition: end - max(0, committed.get(partition, 0)) for partition, end in ends.items()}


def test_two_workers_tag_200_events_exactly_once_each(
    broker, topic_factory, tmp_path, world_clips, group_id, tiny_engine_dir, validate_tag_record
):
    # Given two workers in one group, both assigned, on a 4-partition input topic
    media, rows = world_clips
    engines = REPO_ENGINES if real_engines_present() else tiny_engine_dir
    topics = {
        "input": topic_factory(PARTITIONS, "videos.new"),
        "output": topic_factory(PARTITIONS, "videos.tags"),
        "dlq": topic_factory(PARTITIONS, "videos.dlq"),
    }
    workers = [
        Worker(worker_env(broker, topics, group_id, media, engines), tmp_path / f"w{i}.log") for i in range(2)
    ]
    try:
        assert wait_until(lambda: all(w.get("/readyz")[0] == 200 for w in workers)), workers[0].log_tail()

        # When 200 events are produced, keyed by video_id, each pointing at a labelled clip
        truth = {f"e2e-{i:03d}": rows[i % CLIPS] for i in range(EVENTS)}
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        futures = []
        for video_id, row in truth.items():
            event = {
                "video_id": video_id,
                "uri": (media / row["file"]).as_uri(),
                "title": row["title"],
                "trace_id": f"t-{video_id}",
            }
            futures.append(
                producer.send(topics["input"], key=video_id.encode(), value=json.dumps(event).encode())
            )
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=10)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        producer.close()

        # Then every video_id is tagged once, the records are valid, nothing went to the DLQ
        records = read_topic(broker, topics["output"], lambda rs: len({r["video_id"] for r in rs}) >= EVENTS)
        by_id = {r["video_id"]: r for r in records}
        assert set(by_id) == set(truth), (
            f"missing {sorted(set(truth) - set(by_id))[:5]}\n{workers[0].log_tail()}"
        )
        for record in records:
            validate_tag_record(record)
        assert len({r["worker"] for r in records}) == 2, "both group members must have worked"

        # And the group's committed offsets reach the end: lag 0, in Kafka and in both workers' gauges
        lag = lambda: committed_lag(broker, group_id, topics["input"], ends)
        assert wait_until(lambda: sum(lag().values()) == 0), lag()
        assert wait_until(lambda: sum(w.metric_sum("stream_tagger_consumer_lag") for w in workers) == 0)
        assert sum(w.metric_sum("stream_tagger_events_tagged_total") for w in workers) == EVENTS
        assert sum(w.metric_sum("stream_tagger_events_failed_total") for w in workers) == 0

        if engines == REPO_ENGINES:
            assert_tags_match_labels(by_id, truth)

        # When both get SIGTERM, they drain and exit 0
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        assert [w.process.wait(30) for w in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()


#: Which eval metric of each engine's manifest is the accuracy of which record field.
ACCURACY_KEYS = {
    "category": ("classifier", ("category_accuracy",)),
    "timeliness": ("timeliness", ("fusion_accuracy", "accuracy")),
    "early_action": ("early_action", ("memory_vote_accuracy", "accuracy")),
}
#: 200 events reuse CLIPS clips, so an accuracy here rests on ~12 samples: allow ~2.5 standard errors.
TOLERANCE = 0.25


def assert_tags_match_labels(by_id: dict[str, dict], truth: dict[str, dict]) -> None:
    """Real engines: each head's accuracy on these clips is about its measured accuracy (and above chance)."""
    for field, (engine, keys) in ACCURACY_KEYS.items():
        metrics = EngineManifest.load(list_versions(REPO_ENGINES / engine)[-1][1]).metrics
        measured = next((metrics[key] for key in keys if isinstance(metrics.get(key), float)), None)
        if measured is None:
            continue
        observed = sum(by_id[v][field]["label"] == row[field] for v, row in truth.items()) / len(truth)
        assert observed >= min(measured - TOLERANCE, 0.5), (
            f"{field}: {observed:.2f} vs measured {measured:.2f}"
        )
