"""Input events parse or raise InvalidJson/InvalidEvent; DLQ records follow their JSON Schema."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_tagger.errors import InvalidEvent, InvalidJson
from stream_tagger.records import Origin, dlq_record, parse_event

ORIGIN = Origin(topic="videos.new", partition=2, offset=41)


def test_valid_event_keeps_unknown_fields():
    event = parse_event(b'{"video_id": "v-1", "uri": "file:///m/v.mp4", "title": "t", "colour": "red"}')
    assert event.video_id == "v-1" and event.unknown_fields == ["colour"]


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"{not json", InvalidJson),
        (b"\xff\xfe", InvalidJson),
        (b"[1, 2]", InvalidEvent),
        (b"null", InvalidEvent),
        (b'{"uri": "file:///x.mp4"}', InvalidEvent),
        (b'{"video_id": "v"}', InvalidEvent),
        (b'{"video_id": "", "uri": "file:///x"}', InvalidEvent),
        (b"[" * 100_000, InvalidJson),
        (None, InvalidEvent),
    ],
)
def test_bad_messages_raise_their_dlq_error(raw, error):
    with pytest.raises(error):
        parse_event(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.sampled_from(["video_id", "uri", "title", "x"]), inner, max_size=4)
            ),
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_parser_raises_nothing_outside_the_dlq_path(raw):
    try:
        parse_event(raw)
    except (InvalidJson, InvalidEvent):
        pass


def test_dlq_record_carries_the_original_bytes_and_validates(validate_dlq_record):
    raw = b'{"video_id": "v-9", "uri": "ftp://x", "trace_id": "t-1"}'
    record = dlq_record(raw, ORIGIN, "uri_forbidden", "scheme 'ftp' is not allowed", 1, "w-0", 1024)
    validate_dlq_record(record)
    assert base64.b64decode(record["original"]) == raw
    assert (record["video_id"], record["trace_id"], record["offset"]) == ("v-9", "t-1", 41)


def test_huge_message_is_truncated_in_its_dlq_record(validate_dlq_record):
    raw = b"x" * 100_000
    record = dlq_record(raw, ORIGIN, "too_large", "message too large", 1, "w-0", 1000)
    validate_dlq_record(record)
    assert record["original_truncated"] and len(base64.b64decode(record["original"])) == 1000
    assert record["original_bytes"] == 100_000
