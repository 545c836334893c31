"""Hostile servers and uploads against a real ``stream-tagger run`` on the real broker (issue 15's
fetch classes, issue 21's memory bound). Each class: the issue's example and variations; every event
ends as a tag or a DLQ record with its code, the worker tags good events afterwards, /readyz is 200
(it is ready: its threads were freed by the deadlines) and the process is alive.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_tagger.testing import uploads
from stream_tagger.testing.broker import free_port
from stream_tagger.testing.servers import FileServer, S3Server

BUCKET = "uploads"
RESULTS_TIMEOUT_S = 90.0
FETCH_TIMEOUT_S = 2.0
#: One worker's peak RSS may grow by at most this much while it handles the hostile inputs of a test,
#: over its peak after tagging good events (docs/reliability.md gives the measured figures).
RSS_GROWTH_BOUND_MB = 150.0


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Uploads for these tests: 2-hour and 1.1 GB (sparse) files, and files declaring 1000 streams."""
    root = tmp_path_factory.mktemp("hostile")
    for faststart, suffix in ((True, ""), (False, "_end")):
        clip = uploads.encode_clip(root / f"ten_seconds{suffix}.mp4", seconds=10, faststart=faststart)
        uploads.loop_clip(clip, root / f"two_hours{suffix}.mp4", 7200, faststart=faststart)
        uploads.pad_after_packets(clip, root / f"big{suffix}.mp4", 1_100_000_000)
    frame = uploads.encode_clip(root / "one_frame.mp4", seconds=0.1, size="32x32", fps=10)
    uploads.many_streams(frame, root / "streams_1000.mp4", 1000)
    uploads.many_streams(frame, root / "streams_1000.mkv", 1000)
    return root


@pytest.fixture(scope="module")
def http_server(hostile_root: Path) -> Iterator[FileServer]:
    with FileServer(hostile_root, hold_s=30.0, trickle_interval_s=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def s3(hostile_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.upload(BUCKET, {name: hostile_root / name for name in ("two_hours.mp4", "two_hours_end.mp4")})
        yield server


def _env(worker_env_for, topics, group_id, corpus, hostile_root, s3=None, **overrides) -> dict[str, str]:
    settings = {
        "STREAM_TAGGER_URI_ROOTS": json.dumps([str(corpus.root), str(hostile_root)]),
        "STREAM_TAGGER_URI_HOSTS": json.dumps(["127.0.0.1"]),
        "STREAM_TAGGER_METRICS_PORT": str(free_port()),
        "STREAM_TAGGER_FETCH_TIMEOUT_S": str(FETCH_TIMEOUT_S),
        "STREAM_TAGGER_DECODE_WORKERS": "2",
        "STREAM_TAGGER_RETRY_BACKOFF_S": "0.05",
        **overrides,
    }
    if s3 is not None:
        settings |= s3.env() | {"STREAM_TAGGER_URI_BUCKETS": json.dumps({"s3": [BUCKET]})}
    return worker_env_for(topics, group_id, **settings)


def _produce(producer, topic: str, events: dict[str, str]) -> None:
    for video_id, uri in events.items():
        producer.send(topic, key=video_id.encode(), value=json.dumps({"video_id": video_id, "uri": uri}).encode())
    producer.flush(timeout=10)


def _rss_peak_mb(pid: int) -> float:
    """Peak resident set (VmHWM) so far of the worker plus each of its decode processes: the sum of
    their peaks, an upper bound of their joint peak (fetching and decoding happen in the children)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return sum(_own_rss_peak_mb(p) for p in [pid, *children])


def _own_rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def _run_case(worker, results, producer, topics, corpus, hostile: dict[str, str], good: int = 6) -> dict:
    """Good events, then the hostile ones, then good again: {video_id: record} once all are handled."""
    before = {f"before-{i}": corpus.uri("good.mp4") for i in range(good)}
    after = {f"after-{i}": corpus.uri("good.mp4") for i in range(good)}
    _produce(producer, topics.input, before)
    assert results.wait_for(lambda r: set(before) <= r.tagged_ids(), RESULTS_TIMEOUT_S, (worker,)), worker.log_tail()
    peak_before = _rss_peak_mb(worker.process.pid)
    started = time.monotonic()
    _produce(producer, topics.input, hostile)
    _produce(producer, topics.input, after)
    everything = set(before) | set(hostile) | set(after)
    done = results.wait_for(lambda r: everything <= r.handled_ids(), RESULTS_TIMEOUT_S, (worker,))
    assert done, f"lost: {everything - results.handled_ids()}\n{worker.log_tail()}"
    assert set(after) <= results.tagged_ids(), "good events after the hostile ones must be tagged"
    assert worker.alive() and worker.http_status("/readyz") == 200 and worker.http_status("/healthz") == 200
    by_id = {r["video_id"]: r for r in results.tags} | {r["video_id"]: r for r in results.dlq}
    case = {"records": by_id, "seconds": time.monotonic() - started,
            "rss_peak_before_mb": peak_before, "rss_peak_after_mb": _rss_peak_mb(worker.process.pid)}
    summary = {v: (by_id[v].get("code", "tag"), by_id[v].get("attempts")) for v in hostile}
    print(f"\n{summary} in {case['seconds']:.1f} s (hostile + {good} good after)")  # docs/reliability.md
    return case


def _codes(case: dict, ids) -> dict[str, str]:
    return {video_id: case["records"][video_id].get("code", "tag") for video_id in ids}


def test_stalled_servers_time_out_and_free_the_decode_threads(
        broker, topics, group_id, corpus, hostile_root, http_server, producer_factory, worker_factory, results_for,
        worker_env_for):
    # Given a worker with 2 decode threads and a 2 s fetch deadline
    worker = worker_factory(_env(worker_env_for, topics, group_id, corpus, hostile_root))
    # When two trickling servers (the example: both threads held) and two stalled ones come first
    hostile = {
        "trickle-1": f"{http_server.url}/trickle/two_hours.mp4",
        "trickle-2": f"{http_server.url}/trickle/big.mp4",
        "stall-after-headers": f"{http_server.url}/stall/two_hours.mp4",
        "never-answers": f"{http_server.url}/mute/two_hours.mp4",
    }
    case = _run_case(worker, results_for(topics), producer_factory(), topics, corpus, hostile)

    # Then each is code timeout (once, not retried) and the good events behind them were tagged
    assert _codes(case, hostile) == dict.fromkeys(hostile, "timeout")
    assert all(case["records"][v]["attempts"] == 1 for v in hostile)
    # 4 stalls on 2 threads: 2 rounds of the deadline, plus the good events' own time
    assert case["seconds"] < 2 * FETCH_TIMEOUT_S + 30, case["seconds"]


def test_dropped_connections_are_retried_fetch_failures_never_partial_tags(
        broker, topics, group_id, corpus, hostile_root, http_server, producer_factory, worker_factory, results_for,
        worker_env_for):
    worker = worker_factory(_env(worker_env_for, topics, group_id, corpus, hostile_root))
    hostile = {
        "cut-faststart": f"{http_server.url}/truncate/two_hours.mp4",  # the issue's: a tag from part of it
        "cut-moov-at-end": f"{http_server.url}/truncate/two_hours_end.mp4",  # the issue's: decode_failed
        "cut-short-clip": f"{http_server.url}/truncate/ten_seconds.mp4",
        "not-http": f"{http_server.url}/garbage/two_hours.mp4",  # http.client's BadStatusLine
    }
    case = _run_case(worker, results_for(topics), producer_factory(), topics, corpus, hostile)
    assert _codes(case, hostile) == dict.fromkeys(hostile, "fetch_failed")
    assert all(case["records"][v]["attempts"] == 3 for v in hostile)


def test_files_declaring_a_thousand_streams_keep_memory_bounded(
        broker, topics, group_id, corpus, hostile_root, producer_factory, worker_factory, results_for,
        worker_env_for):
    worker = worker_factory(_env(worker_env_for, topics, group_id, corpus, hostile_root))
    hostile = {
        "mp4-1000-traks": (hostile_root / "streams_1000.mp4").as_uri(),  # the issue's: 0.9 GB in av.open
        "mkv-1000-tracks": (hostile_root / "streams_1000.mkv").as_uri(),
        "mp4-1000-traks-again": (hostile_root / "streams_1000.mp4").as_uri(),
    }
    case = _run_case(worker, results_for(topics), producer_factory(), topics, corpus, hostile)
    codes = _codes(case, hostile)
    assert codes["mp4-1000-traks"] == codes["mp4-1000-traks-again"] == "too_large"
    assert codes["mkv-1000-tracks"] in ("tag", "too_large")  # matroska keeps the first max_streams tracks
    growth = case["rss_peak_after_mb"] - case["rss_peak_before_mb"]
    print(f"\nRSS peak {case['rss_peak_before_mb']:.0f} MB -> {case['rss_peak_after_mb']:.0f} MB (+{growth:.0f})")
    assert growth < RSS_GROWTH_BOUND_MB, case


def _redirect(server: FileServer, target: str) -> str:
    return f"{server.url}/redirect/?to={urllib.parse.quote(target, safe='')}"


def test_ssrf_redirects_and_unusable_paths_are_uri_forbidden(
        broker, topics, group_id, corpus, hostile_root, http_server, producer_factory, worker_factory, results_for,
        worker_env_for):
    worker = worker_factory(_env(worker_env_for, topics, group_id, corpus, hostile_root))
    root = corpus.root.as_uri()
    hostile = {
        "redirect-file": _redirect(http_server, "file:///etc/passwd"),  # the issue's: was fetch_failed
        "redirect-gopher": _redirect(http_server, "gopher://127.0.0.1:70/_x"),
        "redirect-metadata": _redirect(http_server, "http://169.254.169.254/latest/meta-data/"),
        "redirect-bad-port": _redirect(http_server, "http://127.0.0.1:99999/x.mp4"),
        "nul-percent": f"{root}/good%00.mp4",  # the issue's: was decode_failed
        "nul-raw": f"{root}/good\u0000.mp4",
        "surrogate-percent": f"{root}/%ED%B3%BF.mp4",
        "http-bad-port": "http://127.0.0.1:port/x.mp4",
    }
    case = _run_case(worker, results_for(topics), producer_factory(), topics, corpus, hostile)
    assert _codes(case, hostile) == dict.fromkeys(hostile, "uri_forbidden")


def test_sixteen_large_uploads_in_flight_are_tagged_with_bounded_memory(
        broker, topics, group_id, corpus, hostile_root, http_server, s3, producer_factory, worker_factory,
        results_for, worker_env_for):
    # Given a worker that reads http and s3, with room for 32 events in flight and a 64 MB fetch limit
    env = _env(worker_env_for, topics, group_id, corpus, hostile_root, s3=s3,
               STREAM_TAGGER_FETCH_TIMEOUT_S="20", STREAM_TAGGER_MAX_FETCH_BYTES=str(64 * 1024 * 1024))
    worker = worker_factory(env)
    # When 8 uploads of 1.1 GB over HTTP and 8 two-hour uploads over S3 arrive at once
    hostile = {f"http-{i}": f"{http_server.url}/ranged/{('big.mp4', 'big_end.mp4')[i % 2]}" for i in range(8)}
    hostile |= {f"s3-{i}": f"s3://{BUCKET}/{('two_hours.mp4', 'two_hours_end.mp4')[i % 2]}" for i in range(8)}
    case = _run_case(worker, results_for(topics), producer_factory(), topics, corpus, hostile)

    # Then every one is tagged from a few MB, and the worker's peak memory barely moved
    assert _codes(case, hostile) == dict.fromkeys(hostile, "tag")
    fetched = [case["records"][v]["decode"]["bytes_fetched"] for v in hostile]
    assert max(fetched) <= 4_000_000, fetched
    growth = case["rss_peak_after_mb"] - case["rss_peak_before_mb"]
    print(f"\n16 large uploads: fetched {min(fetched)}-{max(fetched)} bytes each; RSS peak "
          f"{case['rss_peak_before_mb']:.0f} MB -> {case['rss_peak_after_mb']:.0f} MB (+{growth:.0f})")
    assert growth < RSS_GROWTH_BOUND_MB, case
