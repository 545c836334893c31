"""Issue 15, class 4: a running worker swaps engines safely, follows deletions and rollbacks, and its
watcher survives whatever it finds in the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import publish_version
from stream_tagger.engines.tiny import write_tiny_engine, write_tiny_repository
from stream_tagger.testing.broker import free_port

WAIT_S = 60.0


def _republish(root: Path, source: Path, **changes) -> Path:
    manifest = EngineManifest.load(source)
    fields = {"feeds": {s.name: s.feed for s in manifest.inputs}, "labels": manifest.labels,
              "training": manifest.training, "serving": manifest.serving, **changes}
    return publish_version(root, manifest.engine, {name: source / name for name in manifest.sha256}, **fields)


def _tag_round(producer, topics, results, worker, corpus, prefix: str, count: int = 2) -> set[str]:
    """Produce ``count`` events and return the classifier refs of their records."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    for video_id in ids:
        event = {"video_id": video_id, "uri": corpus.uri("good.mp4")}
        producer.send(topics.input, key=video_id.encode(), value=json.dumps(event).encode())
    producer.flush(timeout=10)
    assert results.wait_for(lambda r: set(ids) <= r.tagged_ids(), WAIT_S, (worker,)), worker.log_tail()
    return {r["engines"]["classifier"].split("@")[0] for r in results.tags if r["video_id"] in ids}


def _served_soon(worker, version: int) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if worker.metric("stream_tagger_engine_info", engine="classifier", version=str(version)) == 1:
            return True
        time.sleep(0.2)
    return False


def test_bad_versions_are_refused_and_rollback_serves_the_previous_one(
    tmp_path, topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus,
    offsets_check,
):
    # Given a worker serving tiny engines, watching the repository every 0.2 s
    engines = write_tiny_repository(tmp_path / "engines")
    env = worker_env_for(topics, group_id, STREAM_TAGGER_ENGINE_DIR=str(engines),
                         STREAM_TAGGER_RELOAD_INTERVAL_S="0.2", STREAM_TAGGER_METRICS_PORT=str(free_port()))
    worker = worker_factory(env)
    producer, results = producer_factory(), results_for(topics)
    assert _tag_round(producer, topics, results, worker, corpus, "a") == {"classifier/1"}

    # When version 2 loads but disagrees with its manifest (5 category labels for a 6-wide output)
    first = engines / "classifier" / "1"
    labels = EngineManifest.load(first).labels
    _republish(engines, first, labels={**labels, "category": labels["category"][:5]})
    deadline = time.monotonic() + WAIT_S
    while worker.metric("stream_tagger_engine_refused_total", engine="classifier") < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    # Then it is refused, never served, and tagging goes on with version 1
    assert worker.metric("stream_tagger_engine_refused_total", engine="classifier") == 1
    assert _tag_round(producer, topics, results, worker, corpus, "b") == {"classifier/1"}

    # When version 3 is good but its folder also holds a dangling symlink
    third = write_tiny_engine(engines, "classifier", seed=3)
    (third / "README").symlink_to(third / "gone")
    # Then the watcher is not stopped by it and serves version 3
    assert _served_soon(worker, 3), worker.log_tail()
    assert _tag_round(producer, topics, results, worker, corpus, "c") == {"classifier/3"}

    # When the operator rolls back, the worker goes back past the refused 2 to version 1
    rollback = subprocess.run([sys.executable, "-m", "stream_tagger.cli", "engines", "rollback", "classifier"],
                              env={**os.environ, "STREAM_TAGGER_ENGINE_DIR": str(engines)},
                              capture_output=True, text=True, timeout=60)
    assert rollback.returncode == 0, rollback.stderr
    assert _served_soon(worker, 1), worker.log_tail()
    assert _tag_round(producer, topics, results, worker, corpus, "d") == {"classifier/1"}

    # And throughout, the worker stayed ready and lost nothing
    assert worker.http_status("/readyz") == 200
    assert worker.metric("stream_tagger_engine_scan_errors_total") == 0
    committed, unpublished = offsets_check(topics.input, group_id, results.handled_ids())
    assert unpublished == {} and len(results.handled_ids()) == 8
