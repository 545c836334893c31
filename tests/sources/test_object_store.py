"""s3:// sources read by range from a real S3 API (moto in server mode, its own process), and the
bucket allow-list per scheme. Credentials reach fsspec only through the environment (provider chain)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sources_helpers import BUCKET, MB, make_policy, tag

from stream_tagger.errors import EventError, UriForbidden

FOUR_MB = 4 * MB


@pytest.mark.parametrize("name", ["two_hours.mp4", "two_hours_end.mp4"])
def test_two_hour_upload_over_s3_is_tagged_from_a_few_mb(upload_files, s3_store, tagger_for, validate_tag_record,
                                                          name):
    # Given a 2-hour upload (61 MB) in an allowed bucket of a real S3 API
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, s3=s3_store, streams=streams))

    # When it is tagged
    record = tag(tagger, f"s3://{BUCKET}/{name}")

    # Then it was read in a few ranged GETs of at most 4 MB in all
    validate_tag_record(record)
    assert record["decode"]["bytes_fetched"] <= FOUR_MB
    assert record["decode"]["bytes_fetched"] < upload_files.path(name).stat().st_size / 10
    assert 1 <= streams[-1].requests <= 6


def test_moov_at_end_over_s3_costs_one_more_range_read(upload_files, s3_store, tagger_for):
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, s3=s3_store, streams=streams))
    tag(tagger, f"s3://{BUCKET}/two_hours.mp4")
    tag(tagger, f"s3://{BUCKET}/two_hours_end.mp4")
    assert streams[1].requests == streams[0].requests + 1


@pytest.mark.parametrize("uri", [
    "s3://other-bucket/two_hours.mp4",
    "s3://uploads-not/two_hours.mp4",
    "s3://UPLOADS/two_hours.mp4",
    "s3:///two_hours.mp4",
    "s3://uploads",
    "s3://uploads/",
    "gs://uploads/two_hours.mp4",  # allowed for s3 does not mean allowed for gs
    "s3://uploads/a\x00b.mp4",
])
def test_bucket_not_allowed_is_uri_forbidden(upload_files, s3_store, uri):
    with pytest.raises(UriForbidden):
        make_policy(upload_files, s3=s3_store).open(uri)


def test_gs_bucket_allowed_per_scheme(upload_files):
    # Given buckets allowed for gs only: an s3 URI naming the same bucket is refused before any request
    policy = make_policy(upload_files, buckets={"gs": frozenset({BUCKET})})
    with pytest.raises(UriForbidden):
        policy.open(f"s3://{BUCKET}/two_hours.mp4")
    assert policy.object_path(f"gs://{BUCKET}/a/b.mp4") == f"{BUCKET}/a/b.mp4"


def test_missing_object_is_a_fetch_failure_without_retry(upload_files, s3_store, tagger_for):
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files, s3=s3_store)), f"s3://{BUCKET}/absent.mp4")
    assert caught.value.code == "fetch_failed" and caught.value.attempts == 1


def test_frozen_store_times_out_within_fetch_timeout(upload_files, s3_store, tagger_for):
    # Given a store that stops answering (its process is paused) and a 2 s fetch deadline
    tagger = tagger_for(make_policy(upload_files, s3=s3_store, timeout_s=2.0))
    os.kill(s3_store.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(EventError) as caught:
            tag(tagger, f"s3://{BUCKET}/ten_seconds.mp4")
        elapsed = time.monotonic() - started
    finally:
        os.kill(s3_store.pid, signal.SIGCONT)

    # Then the event fails with code timeout, near the deadline
    assert caught.value.code == "timeout", caught.value
    assert elapsed < 2.0 + 1.5, elapsed
