"""Can the decode bound be raised? The serving decode loop against cheaper variants, same videos.

Each variant decodes until the last target time of the engines' policies and converts the frames it
keeps to 64×64 RGB in swscale, like ``stream_tagger.decode.pyav``. Milliseconds per video, one
process (the bound with one decoder per core scales from these).
"""

from __future__ import annotations

import time

import av

from bench.stats import summarise
from bench.videos import Video
from stream_tagger.sampling import SamplingPolicy

#: name -> (codec-context settings, FFmpeg codec options).
#: "skip non-reference frames" is what a policy's ``decode="reference"`` does; the others are not
#: settings of the worker, they say what else could raise the bound.
VARIANTS = {
    "every frame (decode=all)": ({}, {}),
    "skip non-reference frames": ({"skip_frame": "NONREF"}, {}),
    "skip deblocking": ({}, {"skip_loop_filter": "all"}),
    "skip non-ref + deblocking": ({"skip_frame": "NONREF"}, {"skip_loop_filter": "all"}),
    "frame threads": ({"thread_type": "FRAME"}, {}),
}


def measure(videos: list[Video], policies: list[SamplingPolicy], repetitions: int) -> dict:
    """Variants interleaved video by video, so load from other processes hits them all alike."""
    totals = {name: [0.0] * repetitions for name in VARIANTS}
    frames = dict.fromkeys(VARIANTS, 0)
    for rep in range(repetitions):
        for video in videos:
            for name, (settings, options) in VARIANTS.items():
                started = time.perf_counter()
                frames[name] += _decode(video, policies, settings, options)
                totals[name][rep] += (time.perf_counter() - started) * 1000 / len(videos)
    base = summarise(totals["every frame (decode=all)"], 1)["median"]
    return {
        name: {
            "ms_per_video": summarise(ms, 1),
            "speedup": round(base / summarise(ms, 1)["median"], 2),
            "frames_decoded_per_video": round(frames[name] / repetitions / len(videos), 1),
        }
        for name, ms in totals.items()
    }


def _decode(video: Video, policies: list[SamplingPolicy], settings: dict, options: dict) -> int:
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        if options:
            stream.codec_context.options = options
        for key, value in settings.items():
            setattr(stream.codec_context, key, value)
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        targets = sorted({t for p in policies for t in p.target_times(duration)})
        decoded, start = 0, None
        for frame in container.decode(stream):
            decoded += 1
            start = frame.time if start is None else start
            while targets and targets[0] <= frame.time - start + 1 / 60:
                frame.reformat(
                    width=64, height=64, format="rgb24", interpolation="FAST_BILINEAR"
                ).to_ndarray()
                targets.pop(0)
            if not targets:
                break
        return decoded
