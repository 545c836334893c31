"""Scrapes of the worker's /metrics: promtool's lint, and every metric the dashboard and rules use.

Two sources: the worker's own HTTP server and metrics module with every metric exercised (runs as soon
as those modules exist), and a real ``stream-tagger run`` that handled real events (the running_worker
fixture; skipped until the worker's CLI exists).
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from deploy_helpers import exported_names_used, memory_names_used, promtool
from prometheus_client.parser import text_string_to_metric_families

# DESIGN §6, as the exposition format names the series (histograms as _bucket/_sum/_count).
DESIGN_SERIES = {
    "stream_tagger_events_consumed_total",
    "stream_tagger_events_tagged_total",
    "stream_tagger_events_failed_total",
    "stream_tagger_stage_seconds_bucket",
    "stream_tagger_stage_seconds_sum",
    "stream_tagger_stage_seconds_count",
    "stream_tagger_batch_size_bucket",
    "stream_tagger_inflight_events",
    "stream_tagger_consumer_lag",
    "stream_tagger_engine_info",
    "stream_tagger_engine_reloads_total",
    "stream_tagger_decode_frames_total",
}
ENGINES = ("classifier", "timeliness", "early_action")


def exercise(metrics) -> None:
    """One event through every stage, one DLQ record, lag on two partitions, three engines, one reload."""
    metrics.events_consumed.inc(2)
    metrics.events_tagged.inc()
    metrics.events_failed.labels(code="invalid_json").inc()
    for stage in ("queue", "fetch", "decode", "infer", "publish", "total"):
        metrics.stage_seconds.labels(stage=stage).observe(0.02)
    metrics.batch_size.observe(1)
    metrics.inflight.set(0)
    metrics.set_lag({("videos.new", 0): 0, ("videos.new", 1): 3})
    for engine in ENGINES:
        metrics.show_engine(engine, 1, "onnxruntime", previous=None)
    metrics.show_engine("classifier", 2, "onnxruntime", previous=1)
    metrics.decode_frames.labels(backend="pyav").inc(16)


@pytest.fixture(scope="module")
def module_scrape() -> Iterator[str]:
    """/metrics of the worker's HealthServer over its Metrics, every metric exercised."""
    metrics_module = pytest.importorskip(
        "stream_tagger.metrics", reason="the worker's metrics module is not written"
    )
    http_module = pytest.importorskip("stream_tagger.health", reason="the worker's HTTP module is not written")
    metrics = metrics_module.Metrics()
    exercise(metrics)
    server = http_module.HealthServer(
        metrics, alive=lambda: True, ready=lambda: True, host="127.0.0.1", port=0
    ).start(on_fatal=lambda thread, exc: None)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            yield response.read().decode()
    finally:
        server.stop()


@pytest.fixture(params=["module_scrape", "running_worker"])
def scrape(request: pytest.FixtureRequest) -> str:
    source = request.getfixturevalue(request.param)
    return source if isinstance(source, str) else source.scrape()


def samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def test_promtool_check_metrics_accepts_the_scrape(scrape: str) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        check=False,
        input=scrape,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_in_the_dashboard_and_rules_is_exported(scrape: str) -> None:
    # Given a scrape of a worker that handled events
    exported = {sample.name for sample in samples(scrape)}
    # Then each raw metric name that a rule or dashboard query uses has a series in it (the memory
    # writer's own series are checked on the writer's scrape below)
    missing = exported_names_used() - memory_names_used() - exported
    assert not missing, f"queried but not exported: {sorted(missing)}"


def exercise_memory(metrics) -> None:
    """Two confirmations consumed, one added and published, one rejected, a bank of two classes."""
    metrics.confirmations_consumed.inc(2)
    metrics.confirmations_added.inc()
    metrics.confirmations_rejected.labels(code="invalid_json").inc()
    metrics.versions_published.inc()
    metrics.show_bank({"stop": 16, "u_turn": 8}, pending=0)
    metrics.guard_accuracy.labels(bank="published").set(0.9)
    metrics.writer_active.set(1)


@pytest.fixture(scope="module")
def memory_module_scrape() -> Iterator[str]:
    """/metrics of a HealthServer over the memory writer's MemoryMetrics, every metric exercised."""
    from stream_tagger.health import HealthServer
    from stream_tagger.metrics import MemoryMetrics

    metrics = MemoryMetrics()
    exercise_memory(metrics)
    server = HealthServer(metrics, alive=lambda: True, ready=lambda: True, host="127.0.0.1", port=0)
    server.start(on_fatal=lambda thread, exc: None)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            yield response.read().decode()
    finally:
        server.stop()


@pytest.fixture(params=["memory_module_scrape", "running_memory_writer"])
def memory_scrape(request: pytest.FixtureRequest) -> str:
    source = request.getfixturevalue(request.param)
    return source if isinstance(source, str) else source.scrape()


def test_promtool_check_metrics_accepts_the_memory_writer_scrape(memory_scrape: str) -> None:
    result = subprocess.run([promtool(), "check", "metrics"], check=False, input=memory_scrape,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_memory_metric_in_the_dashboard_and_rules_is_exported_by_the_writer(memory_scrape: str) -> None:
    # Given a scrape of a memory writer that handled a good and a bad confirmation
    scraped = samples(memory_scrape)
    # Then each stream_tagger_memory_* name the rules and the dashboard query has a series in it
    assert memory_names_used(), "the dashboard has no online-memory panel"
    missing = memory_names_used() - {sample.name for sample in scraped}
    assert not missing, f"queried but not exported: {sorted(missing)}"
    rejected = {s.labels["code"] for s in scraped
                if s.name == "stream_tagger_memory_confirmations_rejected_total" and s.value > 0}
    assert rejected == {"invalid_json"}
    assert {s.labels["label"] for s in scraped if s.name == "stream_tagger_memory_bank_vectors"}


def test_design_metrics_are_exported_with_their_labels(scrape: str) -> None:
    scraped = samples(scrape)
    assert DESIGN_SERIES <= {sample.name for sample in scraped}
    stages = {
        sample.labels["stage"] for sample in scraped if sample.name == "stream_tagger_stage_seconds_count"
    }
    assert {"queue", "decode", "infer", "publish", "total"} <= stages
    failed = {
        s.labels["code"] for s in scraped if s.name == "stream_tagger_events_failed_total" and s.value > 0
    }
    assert "invalid_json" in failed
    served = {s.labels["engine"] for s in scraped if s.name == "stream_tagger_engine_info" and s.value == 1}
    assert served == set(ENGINES)
    lags = [s for s in scraped if s.name == "stream_tagger_consumer_lag"]
    assert lags and all({"topic", "partition"} <= s.labels.keys() for s in lags)


def test_a_reload_replaces_the_engine_version(module_scrape: str) -> None:
    # The dashboard's version table shows one row per engine: the previous version's series is gone
    classifier = [
        s
        for s in samples(module_scrape)
        if s.name == "stream_tagger_engine_info" and s.labels["engine"] == "classifier"
    ]
    assert [s.labels["version"] for s in classifier] == ["2"]
    reloads = [s.value for s in samples(module_scrape) if s.name == "stream_tagger_engine_reloads_total"]
    assert reloads == [1.0]
