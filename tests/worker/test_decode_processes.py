"""The decode stage in child processes: same frames as in-process, errors kept, dead or stuck children handled."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.decode_stage import DecodeProcesses, fetch_and_decode
from stream_tagger.engines.repository import EngineRepository
from stream_tagger.errors import DecodeFailed, DecodeProcessDied, DecodeTimeout, FetchFailed, UriForbidden
from stream_tagger.metrics import Metrics
from stream_tagger.pipeline import Pipeline
from stream_tagger.records import StageTimes
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.settings import Settings
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy
from stream_tagger.tagger import Tagger

POLICIES = [
    SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0),
    SamplingPolicy(frames=4, height=32, width=32, fraction=0.5, max_seconds=1.0, decode="reference"),
]


@pytest.fixture
def settings(clip_dir) -> Settings:
    return Settings(uri_roots=[clip_dir.resolve()], retry_attempts=2, retry_backoff_s=0.0)


@pytest.fixture
def processes(settings):
    fetched = []
    pool = DecodeProcesses(settings, 2, on_fetch=fetched.append)
    pool.fetched = fetched
    yield pool
    pool.close()


def test_a_decode_process_returns_the_frames_this_process_would_decode(processes, settings, clip_dir):
    # Given a clip under the allowed root
    uri = (clip_dir / "synth-001.mp4").as_uri()

    # When it is fetched and decoded in a child, and here
    times = StageTimes()
    remote = processes.read(uri, POLICIES, times)
    local = fetch_and_decode(UriPolicy.from_settings(settings), make_decoder("pyav"), uri, POLICIES, StageTimes())

    # Then the frames are identical, the fetch is reported here, and the decode start is on our clock
    assert set(remote.frames) == set(POLICIES)
    for policy in POLICIES:
        assert np.array_equal(remote.frames[policy], local.frames[policy])
    assert remote.frames_decoded == local.frames_decoded and remote.bytes_fetched == local.bytes_fetched > 0
    assert [(s.scheme, s.bytes_fetched) for s in processes.fetched] == [("file", local.bytes_fetched)]
    assert times.received <= times.decode <= time.monotonic()


def test_errors_in_a_decode_process_keep_their_class_code_and_attempts(processes, clip_dir):
    (clip_dir / "not-a-video.mp4").write_text("not a video")
    cases = {
        (clip_dir / "absent.mp4").as_uri(): FetchFailed,
        (clip_dir / "not-a-video.mp4").as_uri(): DecodeFailed,
        "file:///etc/passwd": UriForbidden,
    }
    for uri, error in cases.items():
        with pytest.raises(error) as raised:
            processes.read(uri, POLICIES, StageTimes())
        assert raised.value.code == error.code and raised.value.attempts >= 1
    # and the children go on serving
    assert processes.read((clip_dir / "synth-000.mp4").as_uri(), POLICIES, StageTimes()).frames_decoded > 0


def test_a_killed_decode_process_is_reported_dead(processes, clip_dir):
    # Given two live children, one of which is killed
    processes.check()
    os.kill(processes.pids[0], signal.SIGKILL)
    time.sleep(0.3)

    # Then the check says so, and so does a read that gets the dead child
    with pytest.raises(DecodeProcessDied):
        processes.check()
    with pytest.raises(DecodeProcessDied):
        for _ in range(2):  # reads borrow the children in turn
            processes.read((clip_dir / "synth-000.mp4").as_uri(), POLICIES, StageTimes())


def test_a_decode_process_that_never_answers_is_replaced_and_its_event_times_out(settings, clip_dir):
    # Given one child that served an event, then stopped (as if stuck in a native call), and a
    # reply deadline of 1 s
    pool = DecodeProcesses(settings, 1, deadline_s=1.0)
    try:
        assert pool.read((clip_dir / "synth-000.mp4").as_uri(), POLICIES, StageTimes()).frames_decoded > 0
        stuck = pool.pids[0]
        os.kill(stuck, signal.SIGSTOP)

        # When an event is read through it, it times out, the child is killed and replaced
        with pytest.raises(DecodeTimeout):
            pool.read((clip_dir / "synth-000.mp4").as_uri(), POLICIES, StageTimes())
        assert pool.pids != [stuck]
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)

        # Then the next event is decoded by the new child
        assert pool.read((clip_dir / "synth-000.mp4").as_uri(), POLICIES, StageTimes()).frames_decoded > 0
        pool.check()
    finally:
        pool.close()


def test_a_pipeline_whose_decode_process_dies_while_idle_stops_like_on_a_dead_thread(
    tiny_engine_dir, clip_dir, settings
):
    # Given a running pipeline that decodes in processes
    repository = EngineRepository(tiny_engine_dir, "onnxruntime", threads=1)
    repository.load()
    pool = DecodeProcesses(settings, 2)
    policy = UriPolicy.from_settings(settings)
    tagger = Tagger(repository, make_decoder("pyav"), policy, RetryPolicy(1, 0.0, 0.0), "test-0", pool)
    metrics, fatal, done = Metrics(), [], threading.Event()
    pipeline = Pipeline(
        tagger, settings, metrics, lambda item, record: None, lambda message, error: None,
        lambda thread, exc: (fatal.append((thread, exc)), done.set()),
    ).start()
    try:
        # When one of its decode processes is killed while no event is in flight
        os.kill(pool.pids[1], signal.SIGKILL)

        # Then a decode thread reports it as fatal, named and counted like a dead thread
        assert done.wait(10), "a dead decode process went unnoticed"
        thread, exc = fatal[0]
        assert thread.startswith("decode-") and isinstance(exc, DecodeProcessDied)
        assert metrics.thread_failures.labels(thread=thread)._value.get() == 1
    finally:
        pipeline.close()
        tagger.close()


def test_every_event_ends_in_one_callback_when_decoding_in_processes(tiny_engine_dir, clip_dir, settings):
    # Given a pipeline that decodes in processes, and good, missing and undecodable inputs
    (clip_dir / "garbage.mp4").write_bytes(b"\0" * 1000)
    repository = EngineRepository(tiny_engine_dir, "onnxruntime", threads=1)
    repository.load()
    pool = DecodeProcesses(settings, 2)
    tagger = Tagger(repository, make_decoder("pyav"), UriPolicy.from_settings(settings), RetryPolicy(1, 0.0, 0.0),
                    "test-0", pool)
    outcomes: dict[str, list[str]] = {}
    lock, finished = threading.Lock(), threading.Event()
    names = [f"synth-00{i % 3}.mp4" for i in range(9)] + ["absent.mp4", "garbage.mp4"]

    def record(message: str, outcome: str) -> None:
        with lock:
            outcomes.setdefault(message, []).append(outcome)
            if len(outcomes) == len(names):
                finished.set()

    pipeline = Pipeline(
        tagger, settings, Metrics(), lambda item, rec: record(item.message, "tagged"),
        lambda message, error: record(message, error.code), lambda thread, exc: finished.set(),
    ).start()
    try:
        # When they all go through it
        for index, name in enumerate(names):
            uri = (clip_dir / name).as_uri()
            pipeline.submit(f"{index}:{name}", f'{{"video_id": "v{index}", "uri": "{uri}"}}'.encode())

        # Then each has exactly one outcome: a tag, or its DLQ code
        assert finished.wait(60)
        assert all(len(v) == 1 for v in outcomes.values()) and len(outcomes) == len(names)
        assert outcomes["9:absent.mp4"] == ["fetch_failed"] and outcomes["10:garbage.mp4"] == ["decode_failed"]
        assert sum(v == ["tagged"] for v in outcomes.values()) == 9
    finally:
        pipeline.close()
        tagger.close()
