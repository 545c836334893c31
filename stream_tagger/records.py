"""Typed messages: the input event, the stage timings of one event, the tag record and the DLQ record.

Serialisation has one rule for every output (records, DLQ records, Kafka keys): JSON in UTF-8 with
control characters escaped by the JSON encoder, and every lone surrogate (U+D800–U+DFFF, which JSON
escapes can carry but UTF-8 cannot) replaced by U+FFFD. The DLQ record's ``original`` keeps the
message's bytes exactly, base64-encoded.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream_tagger.decode import DecodedClip
from stream_tagger.errors import InvalidEvent, InvalidJson

SCHEMA_VERSION = 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

M = TypeVar("M")


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
    """Bytes → event; any problem raises InvalidJson or InvalidEvent, never anything else.

    Strings follow the module's rule from the start (lone surrogates → U+FFFD): a title cut in the
    middle of a UTF-16 pair by some client must not keep its video from being tagged.
    """
    try:
        payload = _cleaned(json.loads(raw)) if raw is not None else None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(f"message is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(payload, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(payload).__name__}")
    try:
        return InputEvent.model_validate(payload)
    except (ValidationError, RecursionError) as exc:
        raise InvalidEvent(f"invalid event: {_short_errors(exc)}") from exc


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): _cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


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


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def to_json_bytes(record: dict[str, Any]) -> bytes:
    """The one serialisation of every record the worker writes (see the module docstring)."""
    return clean_text(json.dumps(record, ensure_ascii=False, separators=(",", ":"))).encode("utf-8")


def key_bytes(key: str | None) -> bytes | None:
    return clean_text(key).encode("utf-8") if key else None


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StageTimes:
    """Monotonic times at which one event entered each stage (filled in as it moves)."""

    received: float = field(default_factory=time.monotonic)
    fetch: float | None = None
    decode: float | None = None
    decoded: float | None = None

    def ms(self, start: float | None, end: float | None) -> float:
        if start is None or end is None:
            return 0.0
        return round(1000 * (end - start), 2)


@dataclass
class Prepared(Generic[M]):
    """One decoded event waiting for inference, with the caller's handle on where it came from."""

    event: InputEvent
    clip: DecodedClip
    times: StageTimes
    message: M


@dataclass(frozen=True)
class Origin:
    """Where a message came from: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


def tag_record(
    item: Prepared[Any],
    fields: dict[str, Any],
    engines: dict[str, str],
    infer_started: float,
    infer_finished: float,
    worker: str,
) -> dict[str, Any]:
    """The tag record of DESIGN §2 (only the fields of the engines and outputs served)."""
    times = item.times
    record: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "video_id": item.event.video_id, **fields}
    record["engines"] = dict(engines)
    record["decode"] = {
        "backend": item.clip.backend,
        "frames": item.clip.frames_decoded,
        "seconds_covered": item.clip.seconds_covered,
    }
    if item.clip.bytes_fetched is not None:
        record["decode"]["bytes_fetched"] = item.clip.bytes_fetched
    record["latency_ms"] = {
        "queue": times.ms(times.received, times.fetch),
        "decode": times.ms(times.decode, times.decoded),
        "infer": times.ms(infer_started, infer_finished),
        "total": times.ms(times.received, infer_finished),
    }
    record["worker"] = worker
    record["tagged_at"] = utc_now()
    if item.event.trace_id:
        record["trace_id"] = item.event.trace_id
    return record


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
