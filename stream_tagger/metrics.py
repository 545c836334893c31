"""Every Prometheus metric of the worker (DESIGN §6), on one explicit registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream_tagger.engines.manifest import ENGINE_NAMES
from stream_tagger.errors import DLQ_CODES

STAGES = ("queue", "fetch", "decode", "infer", "publish", "total")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_FETCH_BYTES_BUCKETS = tuple(float(1 << shift) for shift in range(16, 31, 2))  # 64 KiB … 1 GiB
#: URI schemes the worker reads (sources/policy.py); each exported at 0 before the first event.
SOURCE_SCHEMES = ("file", "http", "https", "s3", "gs")


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
        self.fetch_bytes = Histogram(
            "stream_tagger_fetch_bytes",
            "Bytes read from the source per event (every fetch, tagged or failed)",
            ["scheme"],
            buckets=_FETCH_BYTES_BUCKETS,
            registry=r,
        )
        self.range_requests = Counter(
            "stream_tagger_range_requests_total",
            "Ranged GETs sent to http(s) servers and object stores",
            ["scheme"],
            registry=r,
        )
        # delivery (kafka/delivery.py, kafka/transactions.py) and the broker link
        self.transactions = Counter(
            "stream_tagger_transactions_total",
            "exactly_once: per-partition transactions, by outcome (committed|failed|fenced)",
            ["outcome"],
            registry=r,
        )
        self.broker_reachable = Gauge(
            "stream_tagger_broker_reachable", "1 while the last Kafka round trip succeeded (else /readyz fails)",
            registry=r,
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
        for outcome in ("committed", "failed", "fenced"):
            self.transactions.labels(outcome=outcome)
        for engine in ENGINE_NAMES:
            self.engine_refused.labels(engine=engine)
        for scheme in SOURCE_SCHEMES:
            self.fetch_bytes.labels(scheme=scheme)
            self.range_requests.labels(scheme=scheme)

    def observe_fetch(self, stream) -> None:
        """One source stream closed (``sources.stream.RangeStream``): what it read, in how many requests."""
        self.fetch_bytes.labels(scheme=stream.scheme).observe(stream.bytes_fetched)
        if stream.requests:
            self.range_requests.labels(scheme=stream.scheme).inc(stream.requests)

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


class MemoryMetrics(Metrics):
    """The memory writer's metrics (``stream-tagger memory``): the worker's, plus its own.

    The writer runs the worker's decode pipeline, so the pipeline's series are there too; its own are
    named ``stream_tagger_memory_*`` and exported only by writer processes.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.confirmations_consumed = Counter(
            "stream_tagger_memory_confirmations_consumed_total",
            "Confirmations read from the topic",
            registry=r,
        )
        self.confirmations_added = Counter(
            "stream_tagger_memory_confirmations_added_total",
            "Confirmations whose features were added to the bank (published or not yet)",
            registry=r,
        )
        self.confirmations_duplicate = Counter(
            "stream_tagger_memory_confirmations_duplicate_total",
            "Confirmations skipped because their (video_id, label) is already in the bank or in flight",
            registry=r,
        )
        self.confirmations_rejected = Counter(
            "stream_tagger_memory_confirmations_rejected_total",
            "Confirmations sent to the confirmations DLQ, by code",
            ["code"],
            registry=r,
        )
        self.bank_vectors = Gauge(
            "stream_tagger_memory_bank_vectors",
            "Vectors in the writer's bank, per class",
            ["label"],
            registry=r,
        )
        self.pending = Gauge(
            "stream_tagger_memory_pending_confirmations",
            "Confirmations added to the bank but not yet in a published version (their offsets wait)",
            registry=r,
        )
        self.versions_published = Counter(
            "stream_tagger_memory_versions_published_total",
            "early_action versions the writer published",
            registry=r,
        )
        self.publishes_refused = Counter(
            "stream_tagger_memory_publishes_refused_total",
            "Memory updates the accuracy guard refused (their confirmations went to the DLQ)",
            registry=r,
        )
        self.guard_accuracy = Gauge(
            "stream_tagger_memory_guard_accuracy",
            "Accuracy on the guard's evaluation set: bank=published (newest version) or candidate (last judged)",
            ["bank"],
            registry=r,
        )
        self.writer_active = Gauge(
            "stream_tagger_memory_writer_active",
            "1 while this member owns the confirmations partition (the writer), 0 on a standby",
            registry=r,
        )
        for code in DLQ_CODES:
            self.confirmations_rejected.labels(code=code)
        for bank in ("published", "candidate"):
            self.guard_accuracy.labels(bank=bank)

    def show_bank(self, sizes: dict[str, int], pending: int) -> None:
        for label, count in sizes.items():
            self.bank_vectors.labels(label=label).set(count)
        self.pending.set(pending)


def _samples(metric) -> list:
    return [sample for family in metric.collect() for sample in family.samples]
