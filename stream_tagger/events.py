"""Typed messages: the input event, and the DLQ record (the tag record is assembled in tagging.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream_tagger.errors import InvalidEvent, InvalidJson

SCHEMA_VERSION = 1


class InputEvent(BaseModel):
    """One ``videos.new`` message. Unknown fields are kept (logged), not rejected."""

    model_config = ConfigDict(extra="allow", frozen=True)

    video_id: str = Field(min_length=1, max_length=512)
    uri: str = Field(min_length=1, max_length=8192)
    title: str = Field(default="", max_length=4096)
    description: str | None = None
    published_at: str | None = None
    author_id: str | None = None
    trace_id: str | None = None

    @property
    def unknown_fields(self) -> list[str]:
        return sorted(self.model_extra or {})


def parse_event(raw: bytes | None) -> InputEvent:
    """Bytes → event; any problem raises InvalidJson or InvalidEvent, never anything else."""
    try:
        payload = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(f"message is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(payload, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(payload).__name__}")
    try:
        return InputEvent.model_validate(payload)
    except (ValidationError, RecursionError) as exc:
        raise InvalidEvent(f"invalid event: {_short_errors(exc)}") from exc


def _short_errors(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors()[:5])
    return str(exc)[:200]


def salvage_ids(raw: bytes | None) -> tuple[str | None, str | None]:
    """Best-effort video_id and trace_id of a message that failed validation (for DLQ and logs)."""
    try:
        payload = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    video_id, trace_id = payload.get("video_id"), payload.get("trace_id")
    return (video_id if isinstance(video_id, str) else None, trace_id if isinstance(trace_id, str) else None)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Origin(BaseModel):
    """Where a message came from (topic/partition/offset), or the CLI for ``stream-tagger tag``."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int


def dlq_record(
    raw: bytes | None,
    origin: Origin,
    code: str,
    message: str,
    attempts: int,
    worker: str,
    max_original_bytes: int,
) -> dict[str, Any]:
    """The DLQ record of DESIGN §2: original bytes (base64, possibly truncated), where, why, who."""
    original = raw or b""
    video_id, trace_id = salvage_ids(raw if len(original) <= max_original_bytes else None)
    return {
        "schema_version": SCHEMA_VERSION,
        "video_id": video_id,
        "trace_id": trace_id,
        "original": base64.b64encode(original[:max_original_bytes]).decode("ascii"),
        "original_bytes": len(original),
        "original_truncated": len(original) > max_original_bytes,
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "code": code,
        "message": message[:2000],
        "attempts": attempts,
        "worker": worker,
        "failed_at": utc_now(),
    }
