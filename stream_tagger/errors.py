"""Errors of stream-tagger. Every failure of one event maps to exactly one DLQ ``code``.

    StreamTaggerError
     ├── EventError                 one event cannot be tagged; becomes a DLQ record
     │    ├── InvalidJson           code=invalid_json    the message is not JSON
     │    ├── InvalidEvent          code=invalid_event   JSON, but not a valid event
     │    ├── UriForbidden          code=uri_forbidden   the URI policy refuses the URI
     │    ├── FetchFailed           code=fetch_failed    the video could not be read (transient if .retryable)
     │    ├── DecodeFailed          code=decode_failed   the bytes are not a decodable video
     │    ├── TooLarge              code=too_large       a resource limit was exceeded
     │    ├── DecodeTimeout         code=timeout         decoding took longer than allowed
     │    ├── FetchTimeout          code=timeout         fetching took longer than allowed (a stalled server)
     │    ├── EngineFailed          code=engine_failed   inference raised
     │    ├── UnknownLabel          code=unknown_label   a confirmed label the engine does not have
     │    └── GuardRefused          code=guard_refused   its memory update was refused by the guard
     ├── ConfigError                the worker cannot start (bad settings, missing engines)
     └── DecodeProcessDied          a decode process exited: fatal to the worker, like a dead thread
"""

from __future__ import annotations


class StreamTaggerError(Exception):
    """Root of every error raised by stream-tagger."""


class ConfigError(StreamTaggerError):
    """Raised when settings or the engine repository make it impossible to start."""


class DecodeProcessDied(StreamTaggerError):
    """Raised when a decode process has exited; the worker stops (exit 1), its events are redelivered."""


class EventError(StreamTaggerError):
    """Raised when one event cannot be tagged; the worker turns it into a DLQ record."""

    code: str = "engine_failed"
    #: A retryable error may succeed on a later attempt (network blips, broker errors).
    retryable: bool = False
    #: How many attempts were made before giving up (set by the retry policy).
    attempts: int = 1

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class InvalidJson(EventError):
    """Raised when a message's bytes are not valid UTF-8 JSON."""

    code = "invalid_json"


class InvalidEvent(EventError):
    """Raised when a JSON message does not follow the event schema."""

    code = "invalid_event"


class UriForbidden(EventError):
    """Raised when the URI policy refuses an event's URI (scheme, root, host)."""

    code = "uri_forbidden"


class FetchFailed(EventError):
    """Raised when the video bytes cannot be read or downloaded."""

    code = "fetch_failed"


class DecodeFailed(EventError):
    """Raised when the bytes cannot be demuxed or decoded into frames."""

    code = "decode_failed"


class TooLarge(EventError):
    """Raised when an input exceeds a resource limit (bytes, pixels, message size)."""

    code = "too_large"


class DecodeTimeout(EventError):
    """Raised when decoding the early frames exceeds the per-video time budget."""

    code = "timeout"


class FetchTimeout(EventError):
    """Raised when reading a video's bytes exceeds its total deadline (connect, every read, all ranges)."""

    code = "timeout"


class EngineFailed(EventError):
    """Raised when an engine's inference fails."""

    code = "engine_failed"


class UnknownLabel(EventError):
    """Raised when a confirmation names a label outside the engine's labels (a taxonomy mismatch)."""

    code = "unknown_label"


class GuardRefused(EventError):
    """Raised for each confirmation of a memory update whose bank the accuracy guard refused to publish."""

    code = "guard_refused"


DLQ_CODES: tuple[str, ...] = (
    "invalid_json",
    "invalid_event",
    "uri_forbidden",
    "fetch_failed",
    "decode_failed",
    "too_large",
    "timeout",
    "engine_failed",
    "unknown_label",
    "guard_refused",
)
