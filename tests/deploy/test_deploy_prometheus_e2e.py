"""End to end: Debian's real Prometheus scrapes a running worker, evaluates rules.yml, answers queries."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_helpers import RULES, VALID_CLIPS, RunningWorker

from stream_tagger.testing.broker import free_port

START_TIMEOUT_S = 30.0
QUERY_TIMEOUT_S = 60.0


class Prometheus:
    """A ``prometheus`` process on loopback with 1 s scrape and rule evaluation, storage in a temp dir."""

    def __init__(self, folder: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus not found: apt-get install prometheus")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "stream-tagger", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = folder / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def query(self, promql: str) -> list[dict]:
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(self, promql: str, accept, timeout_s: float = QUERY_TIMEOUT_S) -> list[dict]:
        """Query until ``accept(result)`` or the deadline; returns the last result."""
        deadline = time.monotonic() + timeout_s
        result = self.query(promql)
        while not accept(result) and time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            time.sleep(0.5)
            result = self.query(promql)
        return result

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                self.get("/api/v1/status/buildinfo")
                return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"prometheus did not start in {START_TIMEOUT_S} s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def prometheus(running_worker: RunningWorker, tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, running_worker.port)
    try:
        server.wait_started()
        yield server
    finally:
        server.stop()


def values(result: list[dict]) -> list[float]:
    return [float(series["value"][1]) for series in result]


def test_prometheus_scrapes_the_worker_and_records_the_rules(
    running_worker: RunningWorker, prometheus: Prometheus
) -> None:
    # Given Prometheus scraping the worker, which already tagged one round of events
    up = prometheus.wait_for('up{job="stream-tagger"}', lambda r: values(r) == [1.0])
    assert values(up) == [1.0], prometheus.log_path.read_text()[-3000:]
    # When a second round of events arrives while Prometheus watches
    running_worker.send_round(1)
    tagged = prometheus.wait_for(
        "sum(stream_tagger_events_tagged_total)", lambda r: values(r) and values(r)[0] >= 2 * VALID_CLIPS
    )
    # Then Prometheus saw every tagged event, and the recording rules carry the new activity
    assert values(tagged) == [2.0 * VALID_CLIPS]
    rate = prometheus.wait_for("stream_tagger:events_tagged:rate1m", lambda r: values(r) and values(r)[0] > 0)
    assert values(rate)[0] > 0
    p99 = prometheus.wait_for(
        'stream_tagger:stage_seconds:p99{stage="total"}', lambda r: values(r) and math.isfinite(values(r)[0])
    )
    assert 0 < values(p99)[0] < 60
    bad_json = prometheus.wait_for(
        'stream_tagger:events_failed:rate1m{code="invalid_json"}', lambda r: values(r) and values(r)[0] > 0
    )
    assert values(bad_json)[0] > 0
    lag = prometheus.wait_for("stream_tagger:consumer_lag:sum", lambda r: values(r) == [0.0])
    assert values(lag) == [0.0] and lag[0]["metric"]["topic"] == running_worker.topic


def test_prometheus_loads_every_rule_healthy(running_worker: RunningWorker, prometheus: Prometheus) -> None:
    # Given Prometheus has evaluated the rules a few times
    def healthy_and_evaluated(groups: list[dict]) -> bool:
        rules = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(
            rule["health"] == "ok" and rule.get("lastEvaluation", "").startswith("20") for rule in rules
        )

    deadline = time.monotonic() + QUERY_TIMEOUT_S
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    while not healthy_and_evaluated(groups) and time.monotonic() < deadline:
        time.sleep(0.5)
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    # Then every rule of rules.yml is loaded and evaluates without error
    expected = yaml.safe_load(RULES.read_text())["groups"]
    assert sorted(group["name"] for group in groups) == sorted(group["name"] for group in expected)
    assert sum(len(group["rules"]) for group in groups) == sum(len(group["rules"]) for group in expected)
    assert healthy_and_evaluated(groups), json.dumps(groups)[:3000]
