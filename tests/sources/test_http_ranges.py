"""http(s) sources read by range from a real loopback server: only the header and the early packets
travel, whatever the file's size; the limits apply to the bytes read; every failure has its code."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from sources_helpers import BIG_BYTES, MB, make_policy, tag

from stream_tagger.errors import EventError

FOUR_MB = 4 * MB


def test_two_hour_upload_is_tagged_from_a_few_ranges(upload_files, http_files, tagger_for, validate_tag_record):
    # Given a 2-hour faststart upload (216,000 samples, 61 MB) behind a Range-capable server
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, streams=streams))
    size = upload_files.path("two_hours.mp4").stat().st_size

    # When it is tagged
    record = tag(tagger, f"{http_files.url}/ranged/two_hours.mp4")

    # Then the record is valid and says how little was read; the server agrees
    validate_tag_record(record)
    fetched = record["decode"]["bytes_fetched"]
    assert fetched <= FOUR_MB < size
    assert http_files.bytes_sent == fetched == streams[-1].bytes_fetched
    assert streams[-1].requests == http_files.requests["ranged"]


def test_moov_at_end_costs_one_more_range_read_not_the_whole_file(upload_files, http_files, tagger_for):
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, streams=streams))

    # When the same 2-hour content is tagged faststart and with its index written last
    faststart = tag(tagger, f"{http_files.url}/ranged/two_hours.mp4")["decode"]["bytes_fetched"]
    moov_last = tag(tagger, f"{http_files.url}/ranged/two_hours_end.mp4")["decode"]["bytes_fetched"]

    # Then the second costs one more request (the seek to the end), and still only a few MB
    first, second = streams
    assert second.requests == first.requests + 1, (first.requests, second.requests)
    assert faststart <= FOUR_MB and moov_last <= FOUR_MB


@pytest.mark.parametrize("name", ["big.mp4", "big_end.mp4"])
def test_file_over_1_gb_and_over_max_fetch_bytes_is_tagged_from_its_early_packets(
        upload_files, http_files, tagger_for, name):
    # Given a valid 1.1 GB MP4 (padding after its early packets) and a 64 MB max_fetch_bytes
    assert upload_files.path(name).stat().st_size == BIG_BYTES
    tagger = tagger_for(make_policy(upload_files, max_bytes=64 * MB))

    # When it is tagged over HTTP
    record = tag(tagger, f"{http_files.url}/ranged/{name}")

    # Then the early frames were enough: a few MB read, far below both the file and the limit
    assert record["decode"]["frames"] >= 1
    assert record["decode"]["bytes_fetched"] <= FOUR_MB
    assert http_files.bytes_sent <= FOUR_MB


def test_server_that_ignores_range_is_read_forward_within_the_limit(upload_files, http_files, tagger_for):
    # Given a server that answers every Range request with the whole body (200)
    tagger = tagger_for(make_policy(upload_files, max_bytes=8 * MB))

    # When a faststart 2-hour upload (61 MB, over the 8 MB limit) is tagged
    record = tag(tagger, f"{http_files.url}/norange/two_hours.mp4")

    # Then only what the decoder needed was read from the one body
    assert record["decode"]["bytes_fetched"] <= FOUR_MB


def test_server_that_ignores_range_with_the_index_at_the_end_hits_the_limit(upload_files, http_files, tagger_for):
    # Given the same server and an upload whose moov sits after 61 MB of packets
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, max_bytes=8 * MB, streams=streams))

    # When it is tagged, the limit applies to the bytes read: reaching the moov would take 61 MB
    with pytest.raises(EventError) as caught:
        tag(tagger, f"{http_files.url}/norange/two_hours_end.mp4")
    assert caught.value.code == "too_large"
    assert all(stream.bytes_fetched <= 8 * MB for stream in streams)


@pytest.mark.parametrize("mode", ["stall", "mute", "trickle"])
def test_stalled_server_times_out_within_fetch_timeout(upload_files, http_files, tagger_for, mode):
    # Given a 2 s fetch deadline and a server that stops after its headers, never answers, or trickles
    tagger = tagger_for(make_policy(upload_files, timeout_s=2.0))
    started = time.monotonic()

    # When the event is tagged
    with pytest.raises(EventError) as caught:
        tag(tagger, f"{http_files.url}/{mode}/two_hours.mp4")

    # Then it fails with code timeout, once (not retried), near the deadline and not later
    elapsed = time.monotonic() - started
    assert caught.value.code == "timeout" and caught.value.attempts == 1
    assert elapsed < 2.0 + 1.5, elapsed


@pytest.mark.parametrize("name", ["two_hours.mp4", "two_hours_end.mp4", "ten_seconds.mp4"])
def test_dropped_connection_is_a_retried_fetch_failure_never_a_partial_tag(upload_files, http_files, tagger_for,
                                                                          name):
    # Given a server that declares each range's length and drops the connection halfway through it
    tagger = tagger_for(make_policy(upload_files))

    # When the event is tagged
    with pytest.raises(EventError) as caught:
        tag(tagger, f"{http_files.url}/truncate/{name}")

    # Then it is fetch_failed after every attempt (short reads are transient), not a tag of part of it
    assert caught.value.code == "fetch_failed" and caught.value.attempts == 3
    assert "short read" in str(caught.value)


def test_server_speaking_garbage_is_a_retried_fetch_failure(upload_files, http_files, tagger_for):
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files)), f"{http_files.url}/garbage/two_hours.mp4")
    assert caught.value.code == "fetch_failed" and caught.value.attempts == 3


def _redirect(server, target: str) -> str:
    return f"{server.url}/redirect/?to={urllib.parse.quote(target, safe='')}"


@pytest.mark.parametrize("target", [
    "file:///etc/passwd",
    "ftp://127.0.0.1/two_hours.mp4",
    "gopher://127.0.0.1:70/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost.evil.example/two_hours.mp4",
    "http://127.0.0.1:99999/two_hours.mp4",
])
def test_redirect_outside_the_allow_list_is_uri_forbidden(upload_files, http_files, tagger_for, target):
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files)), _redirect(http_files, target))
    assert caught.value.code == "uri_forbidden", caught.value
    assert http_files.requests["redirect"] == 1  # refused at the first hop, nothing fetched from the target


def test_redirect_to_an_allowed_host_is_followed_and_later_ranges_go_there(upload_files, http_files, tagger_for):
    streams: list = []
    tagger = tagger_for(make_policy(upload_files, streams=streams))
    record = tag(tagger, _redirect(http_files, f"{http_files.url}/ranged/two_hours_end.mp4"))
    assert record["decode"]["bytes_fetched"] <= FOUR_MB
    # every GET counts, the redirect's first hop included; only that one went to the redirecting URL
    assert http_files.requests["redirect"] == 1
    assert http_files.requests["ranged"] + 1 == streams[-1].requests


def test_redirect_loop_is_a_fetch_failure(upload_files, http_files, tagger_for):
    loop = _redirect(http_files, _redirect(http_files, _redirect(http_files, "x")))
    looping = loop
    for _ in range(5):
        looping = _redirect(http_files, looping)
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files)), looping)
    assert caught.value.code == "fetch_failed" and "redirects" in str(caught.value)


def test_missing_file_is_a_fetch_failure_without_retry(upload_files, http_files, tagger_for):
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files)), f"{http_files.url}/ranged/absent.mp4")
    assert caught.value.code == "fetch_failed" and caught.value.attempts == 1
