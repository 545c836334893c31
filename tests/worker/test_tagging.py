"""Decode once for every engine, run the three engines on a batch, assemble records that follow the schema."""

from __future__ import annotations

import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.engines.repository import EngineRepository
from stream_tagger.errors import DecodeFailed, FetchFailed
from stream_tagger.records import InputEvent, StageTimes
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy
from stream_tagger.tagger import Tagger


@pytest.fixture
def tagger(tiny_engine_dir, clip_dir) -> Tagger:
    repository = EngineRepository(tiny_engine_dir, "onnxruntime", threads=1)
    repository.load()
    policy = UriPolicy((clip_dir.resolve(),), frozenset(), 10**8, 5.0)
    yield Tagger(repository, make_decoder("pyav"), policy, RetryPolicy(3, 0.0, 0.0), "worker-test-0")
    repository.close()


def _event(clip_dir, name: str, title: str = "Breaking: storm hits the coast") -> InputEvent:
    return InputEvent(video_id=name, uri=(clip_dir / name).as_uri(), title=title, trace_id=f"trace-{name}")


def test_batch_of_events_gives_schema_valid_records(tagger, clip_dir, validate_tag_record):
    # Given three decoded clips
    names = ["synth-000.mp4", "synth-001.mp4", "synth-002.mp4"]
    prepared = [tagger.prepare(_event(clip_dir, n), n, StageTimes()) for n in names]

    # When the batch runs through the engines
    records = tagger.infer(prepared)

    # Then each record is valid, in order, and names the engines and the decode it came from
    assert [r["video_id"] for r in records] == names
    for record in records:
        validate_tag_record(record)
        assert record["engines"]["classifier"].startswith("classifier/1@sha256:")
        assert record["decode"]["backend"] == "pyav" and record["decode"]["seconds_covered"] <= 2.0
        assert record["early_action"]["frames_used"] == 8
        assert sum(record["early_action"]["votes"].values()) == 8
        assert record["worker"] == "worker-test-0" and record["trace_id"].startswith("trace-")


def test_one_decode_serves_both_sampling_policies(tagger, clip_dir):
    prepared = tagger.prepare(_event(clip_dir, "synth-000.mp4"), None, StageTimes())
    assert len(tagger.policies) == 2
    assert set(prepared.clip.frames) == set(tagger.policies)


def test_missing_file_fails_without_retry_and_bad_bytes_fail_to_decode(tagger, clip_dir):
    (clip_dir / "text.mp4").write_text("not a video")
    with pytest.raises(FetchFailed):
        tagger.prepare(_event(clip_dir, "absent.mp4"), None, StageTimes())
    with pytest.raises(DecodeFailed):
        tagger.prepare(_event(clip_dir, "text.mp4"), None, StageTimes())


def test_retry_policy_retries_transient_errors_with_bounded_backoff():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise FetchFailed("connection reset", retryable=True)
        return "ok"

    value, attempts = RetryPolicy(attempts=3, backoff_s=0.1, backoff_max_s=0.15).run(flaky, sleeps.append)
    assert (value, attempts) == ("ok", 3)
    assert sleeps == [0.1, 0.15]


def test_retry_policy_gives_up_after_its_attempts():
    def always_down():
        raise FetchFailed("down", retryable=True)

    with pytest.raises(FetchFailed) as caught:
        RetryPolicy(attempts=2, backoff_s=0.0).run(always_down, lambda s: None)
    assert caught.value.attempts == 2
