"""The confirmation event of ``videos.labels.confirmed``: a label learnt after tagging.

    {"video_id": "v-123", "uri": "file:///media/v-123.mp4", "early_action": "u_turn",
     "source": "moderator", "confirmed_at": "2026-12-02T10:00:00Z",
     "category": "news", "tags": ["ticker"], "timeliness": "days"}

``early_action`` is what the memory writer uses; the other engines' labels (the dataset manifest's
field names) are validated and kept in the topic for later use. Unknown fields are allowed, as in
``videos.new``. A confirmation is identified by (video_id, early_action): the key of idempotency.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from stream_tagger.errors import InvalidEvent, InvalidJson, TooLarge, UnknownLabel
from stream_tagger.records import _short_errors  # the one wording of validation errors in DLQ records


class ConfirmationEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    video_id: str = Field(min_length=1, max_length=512)
    uri: str = Field(min_length=1, max_length=8192)
    early_action: str = Field(min_length=1, max_length=256)
    #: Who confirmed it: "moderator", "user_report", "outcome" (what happened later in the video)...
    source: str = Field(min_length=1, max_length=256)
    confirmed_at: AwareDatetime
    trace_id: str | None = None
    # Other engines' confirmed labels: not used by the memory writer yet.
    category: str | None = None
    tags: list[str] | None = None
    quality: str | None = None
    timeliness: str | None = None

    @property
    def key(self) -> str:
        """(video_id, label) as one unambiguous string: the bank stores it with the example."""
        return example_key(self.video_id, self.early_action)


def example_key(video_id: str, label: str) -> str:
    return json.dumps([video_id, label], ensure_ascii=False)


def parse_confirmation(raw: bytes | None, labels: Sequence[str], max_bytes: int) -> ConfirmationEvent:
    """Bytes → confirmation; raises TooLarge, InvalidJson, InvalidEvent or UnknownLabel, nothing else."""
    if raw is not None and len(raw) > max_bytes:
        raise TooLarge(f"message of {len(raw)} bytes exceeds max_message_bytes")
    try:
        payload = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(f"message is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(payload, dict):
        raise InvalidEvent(f"confirmation must be a JSON object, got {type(payload).__name__}")
    try:
        event = ConfirmationEvent.model_validate(payload)
    except (ValidationError, RecursionError) as exc:
        raise InvalidEvent(f"invalid confirmation: {_short_errors(exc)}") from exc
    if event.early_action not in labels:
        raise UnknownLabel(
            f"early_action {event.early_action[:100]!r} is not one of the engine's labels {list(labels)}"
        )
    return event
