"""The metrics registry exports DESIGN §6 names, and the HTTP server answers /metrics, /healthz, /readyz."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from stream_tagger.health import HealthServer
from stream_tagger.metrics import Metrics


def names(metrics: Metrics) -> set[str]:
    return {s.name for f in text_string_to_metric_families(metrics.exposition().decode()) for s in f.samples}


def test_design_names_are_exported_before_any_event():
    metrics = Metrics()
    metrics.show_engine("classifier", 1, "onnxruntime", None)
    metrics.set_lag({("videos.new", 0): 5})
    exported = names(metrics)
    for name in (
        "events_consumed_total",
        "events_tagged_total",
        "events_failed_total",
        "stage_seconds_count",
        "batch_size_count",
        "inflight_events",
        "consumer_lag",
        "engine_info",
        "engine_reloads_total",
    ):
        assert f"stream_tagger_{name}" in exported, name


def test_lag_gauge_replaces_partitions_that_left():
    metrics = Metrics()
    metrics.set_lag({("t", 0): 5, ("t", 1): 2})
    metrics.set_lag({("t", 1): 0})
    text = metrics.exposition().decode()
    assert 'stream_tagger_consumer_lag{partition="1",topic="t"} 0.0' in text
    assert 'partition="0"' not in text


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_endpoints():
    state = {"alive": True, "ready": False}
    server = HealthServer(Metrics(), lambda: state["alive"], lambda: state["ready"], "127.0.0.1", 0)
    server.start(on_fatal=lambda thread, exc: None)
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _status(f"{base}/healthz") == 200
        assert _status(f"{base}/readyz") == 503  # not ready yet
        state["ready"] = True
        assert _status(f"{base}/readyz") == 200
        assert b"stream_tagger_events_tagged_total" in urllib.request.urlopen(f"{base}/metrics").read()
        state["alive"] = False  # a part of the worker failed for good
        assert _status(f"{base}/healthz") == 503
    finally:
        server.stop()
