"""Fixtures of the deployment tests: rendered kustomize overlays, one real worker, one real memory writer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from deploy_helpers import (
    K8S,
    OVERLAYS,
    PARTITIONS,
    VALID_CLIPS,
    RunningMemoryWriter,
    RunningWorker,
    confirmations,
    engine_repository,
    make_clips,
    memory_writer_env,
    render,
    stop,
    wait_handled,
    wait_memory_handled,
    wait_ready,
    worker_env,
    worker_missing_reason,
)
from kafka import KafkaProducer

from stream_tagger.testing.broker import LocalBroker, free_port


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every overlay and the one-shot trainer Jobs (rebuild, rollback), rendered once per session."""
    paths = {name: K8S / "overlays" / name for name in OVERLAYS}
    paths["rebuild-job"] = K8S / "jobs" / "rebuild-engines"
    paths["rollback-job"] = K8S / "jobs" / "rollback-engine"
    return {name: render(path) for name, path in paths.items()}


@pytest.fixture(scope="session")
def running_worker(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """A real ``stream-tagger run`` that has handled every event sent to it (tagged or DLQ)."""
    reason = worker_missing_reason()
    if reason:
        pytest.skip(f"no worker to scrape: {reason}")
    folder = tmp_path_factory.mktemp("deploy-worker")
    media = folder / "media"
    media.mkdir()
    topic = broker.create_topic(f"deploy-videos-{uuid.uuid4().hex[:8]}", PARTITIONS)
    for suffix in (".tags", ".dlq"):
        broker.create_topic(topic + suffix, PARTITIONS)
    port = free_port()
    log_path = folder / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stream_tagger.cli", "run"],
            env=worker_env(broker, topic, media, engine_repository(folder / "engines"), port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_ready(port, process, log_path)
        worker = RunningWorker(
            port,
            process,
            log_path,
            broker.bootstrap,
            topic,
            clips=make_clips(media, VALID_CLIPS),
            forbidden=folder / "secret.mp4",
        )
        worker.send_round(0)
        wait_handled(worker)
        yield worker
    finally:
        stop(process)


@pytest.fixture(scope="session")
def running_memory_writer(
    broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningMemoryWriter]:
    """A real ``stream-tagger memory`` on a copy of the engines, after one bad and one good confirmation."""
    folder = tmp_path_factory.mktemp("deploy-memory")
    media = folder / "media"
    media.mkdir()
    engines = folder / "engines"
    shutil.copytree(engine_repository(folder / "scratch") / "early_action", engines / "early_action")
    clips = make_clips(media, 2)
    eval_set = folder / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"file": str(clip), "label": "stop"}) + "\n" for clip in clips))
    topic = broker.create_topic(f"deploy-confirmed-{uuid.uuid4().hex[:8]}", 1)
    broker.create_topic(f"{topic}.dlq", 1)
    port = free_port()
    log_path = folder / "memory.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stream_tagger.cli", "memory"],
            env=memory_writer_env(broker, topic, media, engines, eval_set, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_ready(port, process, log_path)
        writer = RunningMemoryWriter(port, process, log_path)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        for payload in confirmations(clips[0]):
            producer.send(topic, payload)
        producer.flush(timeout=20)
        producer.close()
        wait_memory_handled(writer, 2)
        yield writer
    finally:
        stop(process)
