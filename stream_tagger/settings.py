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

from stream_tagger.decode import DecodeLimits

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


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

    # Input policy and limits
    uri_roots: list[Path] = Field(default_factory=lambda: [Path("/media")])
    uri_hosts: list[str] = Field(default_factory=list)
    max_message_bytes: int = Field(default=1_000_000, ge=1)
    max_fetch_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=3840 * 2160, ge=1)
    decode_timeout_s: float = Field(default=10.0, gt=0)
    fetch_timeout_s: float = Field(default=10.0, gt=0)
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
    decode_workers: int = Field(default=2, ge=1)
    #: Events held between poll and commit; above it the partitions are paused (backpressure).
    max_inflight: int = Field(default=32, ge=1)
    drain_timeout_s: float = Field(default=20.0, ge=0)

    # Engines
    engine_dir: Path = Path("engines")
    backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    decoder: Literal["pyav", "nvdec"] = "pyav"
    ort_threads: int = Field(default=0, ge=0)
    reload_interval_s: float = Field(default=5.0, ge=0)

    # Operations
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    lag_interval_s: float = Field(default=2.0, gt=0)
    worker_id: str = Field(default_factory=_default_worker_id)
    log_level: str = "INFO"

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_pixels=self.max_pixels,
            timeout_s=self.decode_timeout_s,
            protocol_whitelist=self.ffmpeg_protocols,
            format_whitelist=self.ffmpeg_formats,
        )

    def as_kafka_kwargs(self) -> dict[str, Any]:
        """Connection and security options for kafka-python clients (secrets revealed only here)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.brokers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
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
        }

    def producer_kwargs(self) -> dict[str, Any]:
        return {
            **self.as_kafka_kwargs(),
            "acks": "all",
            "linger_ms": 2,
            "max_request_size": max(1_048_576, self.dlq_original_max_bytes * 2 + 65_536),
        }

    def public_dict(self) -> dict[str, Any]:
        """Settings for logs: secrets stay masked by SecretStr."""
        return self.model_dump(mode="json")


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
