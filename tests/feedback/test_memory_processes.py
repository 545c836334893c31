"""``stream-tagger memory`` and ``stream-tagger run`` as real processes on the real local broker.

End to end: a worker serves the thinned engine; confirmations of the thinned class make the writer
publish a version; the worker hot-reloads it and tags held-out clips of that class better. Faults: the
active writer is killed (-9) between adding examples and publishing; the standby takes over, and the
version it publishes holds every confirmation exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from feedback_helpers import (
    CONFIRM,
    THINNED,
    Process,
    committed_offset,
    produce,
    read_topic,
    settings_env,
    wait_until,
)

from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.engines.repository import latest_version, list_versions
from stream_tagger.feedback.confirmation import example_key

ACTIVE = "stream_tagger_memory_writer_active"
ADDED = "stream_tagger_memory_confirmations_added_total"


def worker_env(broker, topics: dict[str, str], engines, media) -> dict[str, str]:
    env = settings_env(
        broker,
        topics["confirmed"],
        engines,
        media,
        media,
        group_id=f"workers-{topics['input']}",
        input_topic=topics["input"],
        output_topic=topics["tags"],
        dlq_topic=topics["dlq"],
        batch_max_wait_ms=5,
    )
    del env["STREAM_TAGGER_MEMORY_EVAL_SET"]
    return env


def tag(broker, topics: dict[str, str], clips, prefix: str, already: int) -> list[dict]:
    # Given a worker serving the thinned engine (version 2), a writer publishing every 6 confirmations
    produce(
        broker,
        topics["input"],
        [json.dumps({"video_id": f"{prefix}-{c.stem}", "uri": c.as_uri()}).encode() for c in clips],
    )
    records = read_topic(broker, topics["tags"], already + len(clips))
    return [r for r in records if r["video_id"].startswith(f"{prefix}-")]


def recall(records: list[dict]) -> float:
    return float(np.mean([r["early_action"]["label"] == THINNED for r in records]))


def test_confirmed_labels_reach_a_serving_worker(
    broker, topic_factory, world, engines_root, confirmation, tmp_path
):
    # Given a worker serving the thinned engine (version 2), a memory writer publishing every 6 confirmations
    topics = {name: topic_factory(1, prefix=name) for name in ("input", "tags", "dlq", "confirmed")}
    broker.create_topic(f"{topics['confirmed']}.dlq", 1)
    worker = Process("run", worker_env(broker, topics, engines_root, world.media), tmp_path / "worker.log")
    writer = Process(
        "memory",
        settings_env(
            broker,
            topics["confirmed"],
            engines_root,
            world.media,
            world.eval_dir,
            memory_publish_every=CONFIRM,
            memory_publish_interval_s=600,
        ),
        tmp_path / "writer.log",
    )
    try:
        assert wait_until(lambda: writer.metric(ACTIVE) == 1), writer.log_tail()
        assert wait_until(
            lambda: worker.metric("stream_tagger_engine_info", engine="early_action", version="2") == 1
        )
        before = tag(broker, topics, world.held_out, "before", 0)
        assert len(before) == len(world.held_out), worker.log_tail()
        assert {r["engines"]["early_action"].split("@")[0] for r in before} == {"early_action/2"}
        # When moderators confirm other clips of the thinned class
        produce(broker, topics["confirmed"], [confirmation(clip, THINNED) for clip in world.confirm])
        # Then the writer publishes version 3, the worker hot-reloads it, and tags the held-out clips better
        assert wait_until(lambda: writer.metric("stream_tagger_memory_versions_published_total") == 1), (
            writer.log_tail()
        )
        assert wait_until(
            lambda: worker.metric("stream_tagger_engine_info", engine="early_action", version="3") == 1
        )
        after = tag(broker, topics, world.held_out, "after", len(before))
        assert {r["engines"]["early_action"].split("@")[0] for r in after} == {"early_action/3"}
        print(
            f"\nheld-out {THINNED} recall, worker: before {recall(before):.3f}, after {recall(after):.3f}"
        )
        assert recall(after) > recall(before)
        # When the operator rolls the update back, the worker serves version 2 again
        rollback = subprocess.run(
            [sys.executable, "-m", "stream_tagger.cli", "engines", "rollback", "early_action"],
            env={**worker_env(broker, topics, engines_root, world.media)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rollback.returncode == 0, rollback.stderr
        assert wait_until(
            lambda: worker.metric("stream_tagger_engine_info", engine="early_action", version="2") == 1
        )
    finally:
        assert writer.terminate() == 0, writer.log_tail()
        assert worker.terminate() == 0, worker.log_tail()


def test_a_killed_writer_loses_no_confirmation_and_its_standby_adds_none_twice(
    broker, topic_factory, world, engines_root, confirmation, tmp_path
):
    # Given two writers in one group, neither publishing on its own (N and T out of reach)
    topic = topic_factory(1, prefix="confirmed")
    broker.create_topic(f"{topic}.dlq", 1)
    env = {"memory_publish_every": 100, "memory_publish_interval_s": 600}
    writers = [
        Process(
            "memory",
            settings_env(broker, topic, engines_root, world.media, world.eval_dir, **env),
            tmp_path / f"writer-{i}.log",
        )
        for i in range(2)
    ]
    try:
        assert wait_until(lambda: sorted(w.metric(ACTIVE) for w in writers) == [0, 1]), writers[0].log_tail()
        active, standby = sorted(writers, key=lambda w: -w.metric(ACTIVE))
        # When the active writer has added every confirmation to its bank, and is killed before publishing
        produce(broker, topic, [confirmation(clip, THINNED) for clip in world.confirm])
        assert wait_until(lambda: active.metric(ADDED) == CONFIRM), active.log_tail()
        active.kill()
        assert [n for n, _ in list_versions(engines_root / "early_action")] == [1, 2]
        assert committed_offset(broker, f"memory-{topic}", topic) in (None, 0)
        # Then the standby takes the partition over and adds them again, from the last commit
        assert wait_until(lambda: standby.metric(ACTIVE) == 1 and standby.metric(ADDED) == CONFIRM), (
            standby.log_tail()
        )
        assert standby.terminate() == 0, standby.log_tail()  # its drain publishes what is pending
        newest = latest_version(engines_root / "early_action")
        assert newest.name == "3"
        bank = MemoryBank.load(newest)
        # Then version 3 holds each confirmation once, with its 8 frames, and every offset is committed
        assert sorted(bank.example_keys) == sorted(example_key(c.stem, THINNED) for c in world.confirm)
        assert np.bincount(bank.row_example[bank.row_example >= 0]).tolist() == [8] * CONFIRM
        assert committed_offset(broker, f"memory-{topic}", topic) == CONFIRM
        assert read_topic(broker, f"{topic}.dlq", 1, timeout_s=1) == []
    finally:
        for writer in writers:
            writer.kill()


def test_a_topic_of_more_than_one_partition_is_refused(broker, topic_factory, world, engines_root):
    topic = topic_factory(2, prefix="confirmed")
    env = settings_env(broker, topic, engines_root, world.media, world.eval_dir)
    result = subprocess.run(
        [sys.executable, "-m", "stream_tagger.cli", "memory"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "has 2 partitions; the memory writer needs exactly 1" in result.stderr
