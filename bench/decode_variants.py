"""Can the decode bound be raised? The engines' policies under each decode setting, same videos.

Each variant is the served engines' sampling policies with the manifest fields it names changed
(``decode``, ``deblock``, see ``stream_tagger.sampling``), decoded by the serving decoder, so the figure
is what the worker would pay. CPU milliseconds per video in this one process (the process's own time,
not the wall clock: neighbours on a shared machine move it far less), variants interleaved video by
video so that drift hits them all alike.
"""

from __future__ import annotations

import time

from bench.stats import summarise
from bench.videos import Video
from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy

#: name -> the policy fields it sets. The first is "today's" setting, the speed-ups are against it.
VARIANTS = {
    "every frame (decode=all)": {"decode": "all", "deblock": True},
    "non-ref frames no target keeps skipped (decode=needed)": {"decode": "needed", "deblock": True},
    "no deblocking (deblock=false)": {"decode": "all", "deblock": False},
    "decode=needed, deblock=false": {"decode": "needed", "deblock": False},
    "every non-ref frame skipped (decode=reference)": {"decode": "reference", "deblock": True},
}


def measure(videos: list[Video], policies: list[SamplingPolicy], repetitions: int) -> dict:
    decoder = make_decoder("pyav")
    variants = {name: [p.model_copy(update=fields) for p in policies] for name, fields in VARIANTS.items()}
    totals = {name: [0.0] * repetitions for name in VARIANTS}
    frames = dict.fromkeys(VARIANTS, 0)
    for rep in range(repetitions):
        for video in videos:
            for name, variant in variants.items():
                started = time.process_time()
                frames[name] += decoder.decode(str(video.path), variant).frames_decoded
                totals[name][rep] += (time.process_time() - started) * 1000 / len(videos)
    base = summarise(totals[next(iter(VARIANTS))], 1)["median"]
    return {
        name: {
            "settings": VARIANTS[name],
            "ms_per_video": summarise(ms, 1),
            "speedup": round(base / summarise(ms, 1)["median"], 3),
            "frames_decoded_per_video": round(frames[name] / repetitions / len(videos), 1),
        }
        for name, ms in totals.items()
    }
