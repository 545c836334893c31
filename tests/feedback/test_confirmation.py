"""The confirmation event: what is accepted, and the one DLQ code of each way it can be wrong."""

from __future__ import annotations

import json

import pytest

from stream_tagger.errors import DLQ_CODES, EventError
from stream_tagger.feedback.confirmation import example_key, parse_confirmation

LABELS = ["keep_straight", "turn_left", "u_turn"]
GOOD = {
    "video_id": "v-1",
    "uri": "file:///media/v-1.mp4",
    "early_action": "u_turn",
    "source": "moderator",
    "confirmed_at": "2026-12-02T10:00:00Z",
}


def parse(payload) -> object:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_confirmation(raw, LABELS, max_bytes=10_000)


def test_a_confirmation_keeps_other_engines_labels_and_unknown_fields():
    event = parse({**GOOD, "category": "news", "tags": ["ticker"], "timeliness": "days", "ticket": "MOD-7"})
    assert event.early_action == "u_turn" and event.category == "news" and event.tags == ["ticker"]
    assert event.model_extra == {"ticket": "MOD-7"}
    assert event.key == example_key("v-1", "u_turn") == json.dumps(["v-1", "u_turn"])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ([GOOD], "invalid_event"),
        ({k: v for k, v in GOOD.items() if k != "uri"}, "invalid_event"),
        ({k: v for k, v in GOOD.items() if k != "source"}, "invalid_event"),
        ({**GOOD, "confirmed_at": "yesterday"}, "invalid_event"),
        ({**GOOD, "confirmed_at": "2026-12-02T10:00:00"}, "invalid_event"),  # no time zone
        ({**GOOD, "early_action": "moonwalk"}, "unknown_label"),
        ({**GOOD, "early_action": ""}, "invalid_event"),
        ({**GOOD, "source": "x" * 20_000}, "too_large"),
    ],
)
def test_each_bad_confirmation_has_its_code(payload, code):
    with pytest.raises(EventError) as caught:
        parse(payload)
    assert caught.value.code == code and code in DLQ_CODES
