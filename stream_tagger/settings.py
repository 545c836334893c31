"""Worker settings: one frozen object read from ``STREAM_TAGGER_*`` variables (and an optional .env).

Built once by the CLI and passed down; nothing here runs at import time.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_tagger.cpus import usable_cpus
from stream_tagger.decode import DecodeLimits

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _default_decode_workers() -> int:
    # One more than the CPUs: while a process hands its frames back, another keeps the core busy.
    # bench/steady.py measures the bound on cores and cores + 1 processes (docs/benchmarks.md).
    return usable_cpus() + 1


def _default_worker_id() -> str:
    return f"stream-tagger-{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every knob of one worker process; env names are ``STREAM_TAGGER_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="STREAM_TAGGER_", env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    brokers: str = "127.0.0.1:9092"
    input_topic: str = "videos.new"
    output_topic: str = "videos.tags"
    dlq_topic: str = "videos.tags.dlq"
    group_id: str = "stream-tagger"
    client_id: str = "stream-tagger"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=3000, ge=100)
    max_poll_interval_ms: int = Field(default=60_000, ge=1000)
    #: Low, or a send→poll round trip costs up to this long at p99 (MEASURED.md: 500 → p99 255 ms).
    fetch_max_wait_ms: int = Field(default=10, ge=0)
    commit_interval_ms: int = Field(default=200, ge=10)
    #: at_least_once: each result is sent at once and offsets are committed after its ack (a crash can
    #: publish a record twice). exactly_once: every commit interval, one Kafka transaction per input
    #: partition holds its tag and DLQ records and its next offset (docs/operations.md#delivery).
    delivery: Literal["at_least_once", "exactly_once"] = "at_least_once"
    #: exactly_once: transactional ids are ``<prefix>-<input topic>-<partition>`` (prefix: group_id), so
    #: whichever worker owns a partition next fences the one before it.
    transactional_id_prefix: str | None = None
    #: exactly_once: a transaction its worker left open this long is aborted by the broker.
    transaction_timeout_ms: int = Field(default=60_000, ge=1000)
    #: The longest one blocking Kafka call may hold the consumer loop (a transaction step, a lag probe,
    #: the connection probe at start-up).
    kafka_call_timeout_ms: int = Field(default=10_000, ge=100)
    #: Reconnecting to a broker that went away backs off exponentially up to this.
    reconnect_backoff_max_ms: int = Field(default=5000, ge=10)
    #: at_least_once: broker-side dedup of producer retries (Kafka's default). Off only for brokers whose
    #: dedup is unsafe: Tansu 0.6.0 persists a batch's sequence before its data, so after a broker
    #: kill -9 a retried batch is answered "duplicate" and counted as written (docs/operations.md).
    producer_idempotence: bool = True

    # Input policy and limits
    uri_roots: list[Path] = Field(default_factory=lambda: [Path("/media")])
    uri_hosts: list[str] = Field(default_factory=list)
    #: Object-store buckets events may name, per scheme: ``{"s3": ["uploads"], "gs": ["media"]}`` (JSON).
    uri_buckets: dict[Literal["s3", "gs"], list[str]] = Field(default_factory=dict)
    #: S3-compatible stores (MinIO, Ceph, an emulator) and GCS emulators; None = the provider's endpoint.
    s3_endpoint_url: str | None = None
    gcs_endpoint_url: str | None = None
    #: A network range read fetches at least this much; sequential misses double it (up to 8x).
    fetch_readahead_bytes: int = Field(default=256 * 1024, ge=0)
    max_message_bytes: int = Field(default=1_000_000, ge=1)
    #: Bytes one fetch may read (not the file's size: a 2-hour upload is tagged from its first MB).
    max_fetch_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=3840 * 2160, ge=1)
    decode_timeout_s: float = Field(default=10.0, gt=0)
    #: Total wall-clock time of one fetch: connecting, every request and every read, all ranges.
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    #: Bounds on opening a container (ffmpeg's max_streams, probesize in bytes, analyzeduration in µs):
    #: memory inside av.open grows with the streams a file declares, not with its size.
    max_streams: int = Field(default=DecodeLimits.max_streams, ge=1)
    probesize: int = Field(default=DecodeLimits.probesize, ge=32)
    analyzeduration_us: int = Field(default=DecodeLimits.analyzeduration_us, ge=0)
    #: ffmpeg may only use these protocols / demuxers (no playlist or concat tricks that open other files).
    ffmpeg_protocols: str = DecodeLimits.protocol_whitelist
    ffmpeg_formats: str = DecodeLimits.format_whitelist
    retry_attempts: int = Field(default=3, ge=1)
    retry_backoff_s: float = Field(default=0.2, ge=0)
    retry_backoff_max_s: float = Field(default=2.0, ge=0)
    #: DLQ records keep at most this many bytes of the original message (a 10 MB message still fits).
    dlq_original_max_bytes: int = Field(default=64 * 1024, ge=0)

    # Pipeline
    batch_size: int = Field(default=8, ge=1)
    batch_max_wait_ms: int = Field(default=20, ge=0)
    decode_workers: int = Field(default_factory=_default_decode_workers, ge=1)
    #: Fetch and decode in one child process per decode worker (pyav only; nvdec decodes on the GPU
    #: in-process), so decoding never waits for this process's GIL (stream_tagger/decode_stage.py).
    decode_in_processes: bool = True
    #: Events held between poll and commit; above it the partitions are paused (backpressure).
    max_inflight: int = Field(default=32, ge=1)
    drain_timeout_s: float = Field(default=20.0, ge=0)
    #: Events in flight but none finished for this long: the worker is stuck, so it fails (exit 1) and
    #: Kubernetes restarts it; the unfinished events are redelivered. Above every per-event deadline.
    stall_timeout_s: float = Field(default=120.0, gt=0)

    # Engines
    engine_dir: Path = Path("engines")
    backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    decoder: Literal["pyav", "nvdec"] = "pyav"
    #: ONNX Runtime intra-op threads per session (0: one per core). Decode takes ~87 % of the CPU, in
    #: its own processes; one inference thread leaves them the cores (docs/benchmarks.md).
    ort_threads: int = Field(default=1, ge=0)
    reload_interval_s: float = Field(default=5.0, ge=0)

    # Operations
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    lag_interval_s: float = Field(default=2.0, gt=0)
    worker_id: str = Field(default_factory=_default_worker_id)
    log_level: str = "INFO"

    # Confirmed labels → early-action memory (`stream-tagger memory`, docs/early_action.md#online-memory)
    confirmed_topic: str = "videos.labels.confirmed"
    confirmed_dlq_topic: str = "videos.labels.confirmed.dlq"
    #: The writer's own group: the topic has one partition, so one member writes, the others stand by.
    memory_group_id: str = "stream-tagger-memory"
    #: A new early_action version once this many confirmations were added, or this long after the first.
    memory_publish_every: int = Field(default=20, ge=1)
    memory_publish_interval_s: float = Field(default=60.0, gt=0)
    #: Scored before every publish: a dataset folder (manifest.jsonl) or a JSONL of {"uri", "label"}.
    memory_eval_set: Path | None = None
    #: A bank whose accuracy on the evaluation set drops by more than this (absolute) is not published.
    memory_guard_margin: float = Field(default=0.02, ge=0, le=1)
    #: Vectors kept per class (None: the bank's own bound, 2048 for the trained engine).
    memory_max_per_class: int | None = Field(default=None, ge=1)

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_pixels=self.max_pixels,
            timeout_s=self.decode_timeout_s,
            max_streams=self.max_streams,
            probesize=self.probesize,
            analyzeduration_us=self.analyzeduration_us,
            protocol_whitelist=self.ffmpeg_protocols,
            format_whitelist=self.ffmpeg_formats,
        )

    def as_kafka_kwargs(self) -> dict[str, Any]:
        """Connection and security options for kafka-python clients (secrets revealed only here)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.brokers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "reconnect_backoff_max_ms": self.reconnect_backoff_max_ms,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = _reveal(self.sasl_password)
        ssl = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        kwargs.update({key: str(value) for key, value in ssl.items() if value is not None})
        if self.ssl_key_password is not None:
            kwargs["ssl_password"] = _reveal(self.ssl_key_password)
        return kwargs

    def consumer_kwargs(self) -> dict[str, Any]:
        return {
            **self.as_kafka_kwargs(),
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "max_partition_fetch_bytes": self.max_message_bytes + 1024 * 1024,
            "fetch_max_bytes": max(52_428_800, self.max_message_bytes * 2),
            # transactional producers upstream: never hand the pipeline an event that may be aborted
            "isolation_level": "read_committed" if self.delivery == "exactly_once" else "read_uncommitted",
        }

    def producer_kwargs(self) -> dict[str, Any]:
        return {
            **self.as_kafka_kwargs(),
            "acks": "all",
            "enable_idempotence": self.producer_idempotence,
            "linger_ms": 2,
            "max_request_size": max(1_048_576, self.dlq_original_max_bytes * 2 + 65_536),
        }

    def transactional_producer_kwargs(self, topic: str, partition: int) -> dict[str, Any]:
        """The producer that owns one input partition's transactions (exactly_once)."""
        prefix = self.transactional_id_prefix or self.group_id
        return {
            **self.producer_kwargs(),
            "enable_idempotence": True,  # transactions need it
            "transactional_id": f"{prefix}-{topic}-{partition}",
            "transaction_timeout_ms": self.transaction_timeout_ms,
            "max_block_ms": self.kafka_call_timeout_ms,
            "linger_ms": 0,  # a transaction's records go out in one burst right before its commit
        }

    def public_dict(self) -> dict[str, Any]:
        """Settings for logs: secrets stay masked by SecretStr."""
        return self.model_dump(mode="json")


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
