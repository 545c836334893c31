"""The decode bound: PyAV decoding only the early frames the engines need, nothing else.

No Kafka, no inference: ``stream_tagger.decode`` over the video set with the union of the served
engines' sampling policies. Steady-state videos/s come from ``bench.steady`` (as many processes as
cores, one more, and as many threads; served policies and today's; in the same alternation as the
worker when the worker runs);
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
    out = {
        "policies": [p.model_dump() for p in policies],
        "per_video": _per_video(videos, {"served": tuple(policies), "today (every frame)": steady.today_policies(policies)}),
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


def _per_video(videos: list[Video], settings: dict[str, tuple[SamplingPolicy, ...]]) -> dict:
    """Per setting and video: CPU milliseconds (median of 4, one process) and frames decoded. The
    settings alternate video by video, and which goes first turns each round: the second decode of a
    file finds it warmer in the caches (measured: up to 10 ms on a 30 ms clip)."""
    times = {name: {v.name: [] for v in videos} for name in settings}
    frames = {name: {} for name in settings}
    names = list(settings)
    for round_ in range(4):
        order = names[round_ % len(names):] + names[: round_ % len(names)]
        for video in videos:
            for name in order:
                policies = settings[name]
                started = time.process_time()
                frames[name][video.name] = steady.decode_one(str(video.path), policies)
                times[name][video.name].append((time.process_time() - started) * 1000)
    out = {}
    for name in settings:
        rows = {v.name: {"ms": summarise(times[name][v.name], 1)["median"], "frames_decoded": frames[name][v.name]}
                for v in videos}
        rows["mean"] = {
            "ms": round(sum(r["ms"] for r in rows.values()) / len(videos), 1),
            "frames_decoded": round(sum(r["frames_decoded"] for r in rows.values()) / len(videos), 1),
        }
        out[name] = rows
    return out
