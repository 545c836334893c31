"""The serving decoder alone (no engines, no Kafka) answers every corpus file as the corpus expects."""

from __future__ import annotations

import time

import pytest

from stream_tagger.decode import DecodeLimits, make_decoder
from stream_tagger.errors import EventError
from stream_tagger.sampling import SamplingPolicy

#: The contract's two policies (classifier/timeliness and early_action).
POLICIES = [SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0),
            SamplingPolicy(frames=8, height=64, width=64, fraction=0.1, max_seconds=2.0)]
LIMITS = DecodeLimits(timeout_s=10.0)


def decode_outcome(path) -> tuple[str, object]:
    decoder = make_decoder("pyav", LIMITS)
    try:
        return "tag", decoder.decode(str(path), POLICIES)
    except EventError as error:
        return error.code, error
    finally:
        decoder.close()


def test_every_media_case_decodes_or_fails_with_its_code(corpus):
    outcomes = {case.name: decode_outcome(corpus.root / case.file)[0] for case in corpus.media}
    wrong = {case.name: (outcomes[case.name], case.expect) for case in corpus.media
             if outcomes[case.name] not in case.expect}
    assert wrong == {}, f"case: (got, expected) -> {wrong}"


@pytest.mark.parametrize("name", ["two_hours.mp4", "huge_8192.h264", "huge_16384.h264"])
def test_hostile_files_stop_within_the_decode_budget(corpus, name):
    # Given a file built to make a naive decoder work for a long time or allocate a huge frame
    started = time.monotonic()

    # When the serving decoder opens it
    code, result = decode_outcome(corpus.root / name)

    # Then it answers within its own time budget, having touched only the early frames
    assert time.monotonic() - started < LIMITS.timeout_s
    if code == "tag":
        assert result.seconds_covered <= 2.5
        assert all(frames.shape == (8, 64, 64, 3) for frames in result.frames.values())
