"""Every Prometheus metric of the worker (DESIGN §6), on one explicit registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream_tagger.errors import DLQ_CODES

STAGES = ("queue", "fetch", "decode", "infer", "publish", "total")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """Holds the metric objects; one instance per worker (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "stream_tagger_events_consumed_total", "Events read from the input topic", registry=r
        )
        self.events_tagged = Counter(
            "stream_tagger_events_tagged_total", "Tag records acknowledged by Kafka", registry=r
        )
        self.events_failed = Counter(
            "stream_tagger_events_failed_total", "DLQ records acknowledged, by code", ["code"], registry=r
        )
        self.stage_seconds = Histogram(
            "stream_tagger_stage_seconds",
            "Seconds spent per stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "stream_tagger_batch_size", "Events per inference batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.inflight = Gauge(
            "stream_tagger_inflight_events", "Events consumed but not yet committed", registry=r
        )
        self.consumer_lag = Gauge(
            "stream_tagger_consumer_lag",
            "End offset minus committed offset",
            ["topic", "partition"],
            registry=r,
        )
        self.engine_info = Gauge(
            "stream_tagger_engine_info",
            "Served engine versions (value 1)",
            ["engine", "version", "backend"],
            registry=r,
        )
        self.engine_reloads = Counter(
            "stream_tagger_engine_reloads_total", "Engine versions swapped in", registry=r
        )
        self.decode_frames = Counter(
            "stream_tagger_decode_frames_total", "Frames decoded", ["backend"], registry=r
        )
        self.thread_failures = Counter(
            "stream_tagger_thread_failures_total",
            "Long-lived threads that failed for good (the worker then exits non-zero)",
            ["thread"],
            registry=r,
        )
        self.unexpected_errors = Counter(
            "stream_tagger_unexpected_errors_total",
            "Events failed by an unexpected exception (a bug), by stage; each also got a DLQ record",
            ["stage"],
            registry=r,
        )
        self.engine_refused = Counter(
            "stream_tagger_engine_refused_total",
            "Engine versions that failed to load or to pass their probe inference, never served",
            ["engine"],
            registry=r,
        )
        self.engine_scan_errors = Counter(
            "stream_tagger_engine_scan_errors_total", "Engine repository scans that raised", registry=r
        )
        self._touch_label_sets()

    def _touch_label_sets(self) -> None:
        """Export every code and stage at 0 so rules and dashboards see the series before the first event."""
        for code in DLQ_CODES:
            self.events_failed.labels(code=code)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)
        for stage in ("decode", "infer"):
            self.unexpected_errors.labels(stage=stage)

    def show_engine(self, engine: str, version: int, backend: str, previous: int | None) -> None:
        if previous is not None:
            self.engine_info.remove(engine, str(previous), backend)
            self.engine_reloads.inc()
        self.engine_info.labels(engine=engine, version=str(version), backend=backend).set(1)

    def set_lag(self, lags: dict[tuple[str, int], int]) -> None:
        self.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self) -> dict[str, float]:
        """A few headline numbers (used by the demo)."""
        failed = {
            s.labels["code"]: s.value for s in _samples(self.events_failed) if s.name.endswith("_total")
        }
        stages = {s.labels["stage"]: s.value for s in _samples(self.stage_seconds) if s.name.endswith("_sum")}
        counts = {
            s.labels["stage"]: s.value for s in _samples(self.stage_seconds) if s.name.endswith("_count")
        }
        mean_ms = {f"mean_{k}_ms": round(1000 * v / counts[k], 1) for k, v in stages.items() if counts.get(k)}
        return {
            "consumed": self.events_consumed._value.get(),
            "tagged": self.events_tagged._value.get(),
            "failed": sum(failed.values()),
            **mean_ms,
        }


def _samples(metric) -> list:
    return [sample for family in metric.collect() for sample in family.samples]
