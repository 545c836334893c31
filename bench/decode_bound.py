"""The decode bound: PyAV decoding only the early frames the engines need, nothing else.

No Kafka, no inference: ``stream_tagger.decode`` over the video set with the union of the served
engines' sampling policies. Steady-state videos/s come from ``bench.steady`` (2 processes and
2 threads, served policies and today's, in the same alternation as the worker when the worker runs);
this module adds what one video costs, per video, with the served policies and with today's.
"""

from __future__ import annotations

import time

from bench import cpu, steady
from bench.stats import summarise
from bench.videos import Video
from stream_tagger.sampling import SamplingPolicy


def measure(videos: list[Video], policies: list[SamplingPolicy], repetitions: int, with_modes: bool) -> dict:
    """Per-video ms and frames (served vs today's); the steady decode modes too when ``with_modes``
    (without a worker run to alternate with, e.g. ``--only decode``)."""
    served = steady.decode_modes(policies)[0].policies
    today = steady.decode_modes(policies)[2].policies
    out = {
        "policies": [p.model_dump() for p in policies],
        "per_video": {"served": _per_video(videos, served), "today (every frame)": _per_video(videos, today)},
    }
    if with_modes:
        out |= bound_only(videos, policies, repetitions)
    return out


def bound_only(videos: list[Video], policies: list[SamplingPolicy], repetitions: int) -> dict:
    """The steady decode modes alone, B B B (no worker to alternate with)."""
    modes = steady.decode_modes(policies)
    events = steady.repetition_events()
    paths = [str(v.path) for v in videos]
    cycle = [paths[i % len(paths)] for i in range(events)]
    reps: dict[str, list[dict]] = {mode.name: [] for mode in modes}
    with steady.Pools() as pools, cpu.Sampler(cpu.Groups()) as sampler:
        for rep in range(repetitions):
            for mode in modes[rep % len(modes):] + modes[: rep % len(modes)]:
                reps[mode.name].append(steady.bound_repetition(pools[mode.pool], cycle, mode, steady.SKIP, sampler))
    bound = steady.bound_summary(reps)
    return {"videos_per_s": bound["videos_per_s"], "steady": bound | {"events_per_repetition": events}}


def _per_video(videos: list[Video], policies: tuple[SamplingPolicy, ...]) -> dict:
    """Milliseconds (median of 3, one process) and frames decoded for each video."""
    out = {}
    for video in videos:
        times, frames = [], 0
        for _ in range(3):
            started = time.perf_counter()
            frames = steady.decode_one(str(video.path), policies)
            times.append((time.perf_counter() - started) * 1000)
        out[video.name] = {"ms": summarise(times, 1)["median"], "frames_decoded": frames}
    total_ms = sum(v["ms"] for v in out.values())
    out["mean"] = {
        "ms": round(total_ms / len(videos), 1),
        "frames_decoded": round(sum(v["frames_decoded"] for k, v in out.items() if k != "mean") / len(videos), 1),
    }
    return out
