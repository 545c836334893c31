"""Helpers of the deployment tests: paths, the real kustomize, and a real ``stream-tagger run`` worker.

The worker is a real process on the session's broker, fed a few real events (tiny H.264 clips made by
Debian's ffmpeg, plus events that must go to the DLQ), so its ``/metrics`` holds every series the
dashboard and the rules use.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from stream_tagger.testing.broker import LocalBroker, kafka_timeouts

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
WORKER_START_TIMEOUT_S = 90.0
EVENTS_DONE_TIMEOUT_S = 90.0
PARTITIONS = 2
VALID_CLIPS = 3
ENGINE_NAMES = ("classifier", "timeliness", "early_action")


def kubectl() -> str:
    """The real kustomize, through kubectl (Debian/Ubuntu images of this project ship /usr/bin/kubectl)."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail(
            "kubectl not found: the deployment tests render overlays with the real `kubectl kustomize`"
        )
    return binary


def render(path: Path) -> list[dict]:
    """``kubectl kustomize PATH`` parsed into its documents."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def worker_missing_reason() -> str | None:
    """Why a real worker cannot run yet (the worker's modules are written concurrently), or None."""
    for module in (
        "stream_tagger.metrics",
        "stream_tagger.health",
        "stream_tagger.settings",
        "stream_tagger.cli",
    ):
        if importlib.util.find_spec(module) is None:
            return f"{module} does not exist yet"
    return None


@dataclass
class RunningWorker:
    """A ``stream-tagger run`` process, its metrics address, and how to send it more events."""

    port: int
    process: subprocess.Popen
    log_path: Path
    bootstrap: str
    topic: str
    clips: list[Path]
    forbidden: Path
    events_sent: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def send_round(self, round_number: int) -> None:
        """Produce one event per clip and two DLQ-bound events, all with new video ids."""
        payloads = events(self.clips, self.forbidden, round_number)
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        for index, payload in enumerate(payloads):
            producer.send(self.topic, payload, key=f"r{round_number}-{index}".encode())
        producer.flush(timeout=20)
        producer.close()
        self.events_sent += len(payloads)

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return response.read().decode()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def make_clips(folder: Path, count: int) -> list[Path]:
    """Tiny real H.264 MP4 files (2 s, 96x96, 10 fps) rendered by ffmpeg's test source."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("the worker fixture needs Debian's ffmpeg (apt-get install ffmpeg)")
    clips = []
    for index in range(count):
        clip = folder / f"clip-{index}.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc=size=96x96:rate=10:duration=2,hue=h={index * 90}",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                str(clip),
            ],
            check=True,
            timeout=60,
        )
        clips.append(clip)
    return clips


def events(clips: list[Path], forbidden: Path, round_number: int) -> list[bytes]:
    """Valid events for the clips, then two the worker must send to the DLQ (bad JSON, forbidden path)."""
    valid = [
        json.dumps(
            {
                "video_id": f"deploy-{round_number}-{clip.stem}",
                "uri": clip.as_uri(),
                "title": "Live: city traffic",
                "trace_id": uuid.uuid4().hex,
            }
        ).encode()
        for clip in clips
    ]
    outside = json.dumps({"video_id": f"deploy-{round_number}-forbidden", "uri": forbidden.as_uri()})
    return [*valid, b"{not json", outside.encode()]


def engine_repository(scratch: Path) -> Path:
    """The committed engines/ when it holds a version of every engine, else the worker tests' tiny engines."""
    committed = REPO / "engines"
    if all(any(path.is_dir() for path in (committed / name).glob("*")) for name in ENGINE_NAMES):
        return committed
    from stream_tagger.engines.tiny import write_tiny_repository

    return write_tiny_repository(scratch)


def worker_env(broker: LocalBroker, topic: str, media: Path, engines: Path, port: int) -> dict[str, str]:
    """Settings of one ``stream-tagger run`` (names: stream_tagger/settings.py, prefix STREAM_TAGGER_)."""
    timeouts = kafka_timeouts()
    settings = {
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_INPUT_TOPIC": topic,
        "STREAM_TAGGER_OUTPUT_TOPIC": f"{topic}.tags",
        "STREAM_TAGGER_DLQ_TOPIC": f"{topic}.dlq",
        "STREAM_TAGGER_GROUP_ID": f"deploy-{uuid.uuid4().hex[:8]}",
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(media)]),
        "STREAM_TAGGER_ENGINE_DIR": str(engines),
        "STREAM_TAGGER_METRICS_PORT": str(port),
        "STREAM_TAGGER_METRICS_HOST": "127.0.0.1",
        "STREAM_TAGGER_SESSION_TIMEOUT_MS": str(timeouts["session_timeout_ms"]),
        "STREAM_TAGGER_HEARTBEAT_INTERVAL_MS": str(timeouts["heartbeat_interval_ms"]),
        "STREAM_TAGGER_MAX_POLL_INTERVAL_MS": str(timeouts["max_poll_interval_ms"]),
    }
    return {**os.environ, **settings}


def wait_ready(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"worker exited {process.returncode}: {log_path.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"worker not ready in {WORKER_START_TIMEOUT_S} s: {log_path.read_text()[-3000:]}")


def handled_events(scrape: str) -> float:
    """tagged + failed events, summed over every series, from a /metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name in ("stream_tagger_events_tagged_total", "stream_tagger_events_failed_total")
    )


def wait_handled(worker: RunningWorker) -> None:
    deadline = time.monotonic() + EVENTS_DONE_TIMEOUT_S
    while handled_events(worker.scrape()) < worker.events_sent:
        assert worker.process.poll() is None, f"worker exited: {worker.log_tail()}"
        if time.monotonic() > deadline:
            pytest.fail(f"worker handled fewer than {worker.events_sent} events: {worker.log_tail()}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "stream-tagger.json"
METRIC_NAME = re.compile(r"\bstream_tagger_[a-z0-9_]+")
RECORDED_NAME = re.compile(r"\bstream_tagger:[a-z0-9_:]+")


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: apt-get install prometheus")
    return binary


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = [
        variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable
    ]
    return queries + variables


def exported_names_used() -> set[str]:
    """Every raw worker metric name (not a recording rule) the rules and the dashboard query."""
    return {
        name for expr in rule_expressions() + dashboard_expressions() for name in METRIC_NAME.findall(expr)
    }


#: Series only ``stream-tagger memory`` exports (metrics.MemoryMetrics); the others, every process.
MEMORY_METRIC_PREFIX = "stream_tagger_memory_"


def memory_names_used() -> set[str]:
    return {name for name in exported_names_used() if name.startswith(MEMORY_METRIC_PREFIX)}


@dataclass
class RunningMemoryWriter:
    """A ``stream-tagger memory`` process that handled a good and a bad confirmation."""

    port: int
    process: subprocess.Popen
    log_path: Path

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            return response.read().decode()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def memory_writer_env(broker: LocalBroker, topic: str, media: Path, engines: Path, eval_set: Path,
                      port: int) -> dict[str, str]:
    """Settings of one ``stream-tagger memory`` that publishes after every confirmation."""
    timeouts = kafka_timeouts()
    settings = {
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_CONFIRMED_TOPIC": topic,
        "STREAM_TAGGER_CONFIRMED_DLQ_TOPIC": f"{topic}.dlq",
        "STREAM_TAGGER_MEMORY_GROUP_ID": f"deploy-memory-{uuid.uuid4().hex[:8]}",
        "STREAM_TAGGER_MEMORY_EVAL_SET": str(eval_set),
        "STREAM_TAGGER_MEMORY_PUBLISH_EVERY": "1",
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(media)]),
        "STREAM_TAGGER_ENGINE_DIR": str(engines),
        "STREAM_TAGGER_METRICS_PORT": str(port),
        "STREAM_TAGGER_METRICS_HOST": "127.0.0.1",
        **{f"STREAM_TAGGER_{key.upper()}": str(value) for key, value in timeouts.items()},
    }
    return {**os.environ, **settings}


def confirmations(clip: Path) -> list[bytes]:
    """A bad confirmation (not JSON) and a good one for ``clip``."""
    good = {"video_id": f"deploy-{clip.stem}", "uri": clip.as_uri(), "early_action": "stop",
            "source": "deploy-test", "confirmed_at": "2026-12-02T10:00:00Z"}
    return [b"{not json", json.dumps(good).encode()]


def wait_memory_handled(writer: RunningMemoryWriter, handled: int) -> None:
    """Until the writer rejected the bad confirmation and published (or refused) the good one."""
    from prometheus_client.parser import text_string_to_metric_families

    def done() -> bool:
        values = {s.name: s.value for f in text_string_to_metric_families(writer.scrape()) for s in f.samples
                  if not s.labels or s.labels.get("code") == "invalid_json"}
        return (values.get("stream_tagger_memory_confirmations_rejected_total", 0)
                + values.get("stream_tagger_memory_versions_published_total", 0)
                + values.get("stream_tagger_memory_publishes_refused_total", 0)) >= handled

    deadline = time.monotonic() + EVENTS_DONE_TIMEOUT_S
    while not done():
        assert writer.process.poll() is None, f"memory writer exited: {writer.log_tail()}"
        if time.monotonic() > deadline:
            pytest.fail(f"memory writer handled fewer than {handled} confirmations: {writer.log_tail()}")
        time.sleep(0.5)
