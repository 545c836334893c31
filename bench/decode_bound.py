"""The decode bound: PyAV decoding only the early frames the engines need, nothing else.

No Kafka, no inference: videos/s of ``stream_tagger.decode`` over the video set, with one decoding
process, one per core, and two threads (as the worker does). The best is the physical limit
of this machine's CPU path.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from bench.stats import summarise
from bench.videos import Video
from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy


def measure(videos: list[Video], policies: list[SamplingPolicy], repetitions: int, passes: int) -> dict:
    """videos/s at concurrency 1 and 2 (processes), plus per-video decode milliseconds."""
    paths = [str(v.path) for v in videos] * passes
    serial = [
        len(paths) / _timed(lambda: [_decode_one(p, policies) for p in paths]) for _ in range(repetitions)
    ]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_decode_one, paths[:2], [policies] * 2))  # start and warm both processes
        parallel = [
            len(paths) / _timed(lambda: list(pool.map(_decode_one, paths, [policies] * len(paths))))
            for _ in range(repetitions)
        ]
    with ThreadPoolExecutor(2) as pool:  # how the worker decodes: PyAV releases the GIL
        threads = [
            len(paths) / _timed(lambda: list(pool.map(_decode_one, paths, [policies] * len(paths))))
            for _ in range(repetitions)
        ]
    by_concurrency = {
        "1 process": summarise(serial),
        "2 processes": summarise(parallel),
        "2 threads": summarise(threads),
    }
    return {
        "videos_per_s": max(by_concurrency.values(), key=lambda s: s["median"]),
        "by_concurrency": by_concurrency,
        "per_video": _per_video(videos, policies),
        "policies": [p.model_dump() for p in policies],
    }


def _per_video(videos: list[Video], policies: list[SamplingPolicy]) -> dict:
    """Milliseconds and frames decoded for each video (median of 3), to see where the bound goes."""
    out = {}
    for video in videos:
        times, frames = [], 0
        for _ in range(3):
            started = time.perf_counter()
            frames = _decode_one(str(video.path), policies)
            times.append((time.perf_counter() - started) * 1000)
        out[video.name] = {"ms": summarise(times, 1)["median"], "frames_decoded": frames}
    return out


def _decode_one(path: str | Path, policies: list[SamplingPolicy]) -> int:
    decoder = make_decoder("pyav")
    try:
        return decoder.decode(str(path), policies).frames_decoded
    finally:
        decoder.close()


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
