"""Does the worker's fetch path cost decode CPU? ``python -m bench.source_cost [REPETITIONS]``.

The same served policies decoded three ways in this one process, interleaved video by video, CPU
milliseconds per video (``time.process_time``): PyAV on the file's path (what the decode bound does),
through ``fetch_and_decode`` over a ``file://`` URI (``UriPolicy`` → ``RangeStream``, what a decode
process does), and that plus pickling the clip there and back (the reply to the worker process).
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

from bench.engines import decode_policies, newest_engines
from bench.videos import video_set
from stream_tagger.decode import make_decoder
from stream_tagger.decode_stage import fetch_and_decode
from stream_tagger.records import StageTimes
from stream_tagger.settings import Settings
from stream_tagger.sources.policy import UriPolicy


def measure(repetitions: int) -> dict[str, list[float]]:
    videos = video_set()
    policies = decode_policies(newest_engines())
    settings = Settings(_env_file=None, uri_roots=[Path(videos[0].path).parent])
    uri_policy = UriPolicy.from_settings(settings)
    decoder = make_decoder("pyav", settings.decode_limits())

    def through_uri(path: Path):
        return fetch_and_decode(uri_policy, decoder, path.as_uri(), policies, StageTimes())

    ways = {
        "path": lambda path: decoder.decode(str(path), policies),
        "uri": through_uri,
        "uri+pickle": lambda path: pickle.loads(pickle.dumps(through_uri(path))),
    }
    ms: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repetitions):
        totals = dict.fromkeys(ways, 0.0)
        for video in videos:
            for name, way in ways.items():
                started = time.process_time()
                way(Path(video.path))
                totals[name] += time.process_time() - started
        for name, total in totals.items():
            ms[name].append(round(total * 1000 / len(videos), 1))
    return ms


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3)))
