"""Soak: one ``stream-tagger run`` worker under a steady open-loop load for minutes.

Checks that nothing is lost (every event gets a tag or DLQ record), that latency stays flat minute
by minute, and that the worker's resident memory stays within a stated bound of its warmed-up size.
Usage: ``python -m bench.soak --minutes 10 --rate 3``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import machine
from bench.cpu import children
from bench.engines import ENGINES_DIR, newest_engines
from bench.kafka_io import broker
from bench.load import Load
from bench.stats import percentiles
from bench.videos import CACHE_DIR, synthetic_videos
from bench.worker_bench import Setup, create_topics, workers

RESULTS = Path(__file__).resolve().parent / "results"
#: The memory bound: end RSS may exceed the warmed-up RSS by 20 % plus 50 MB, no more.
RSS_FACTOR, RSS_SLACK_MB = 1.2, 50.0


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and of its decode processes (children), from /proc (VmRSS, kB)."""
    return sum(_own_rss_mb(p) for p in [pid, *children(pid)])


def _own_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def soak(load: Load, pid: int, minutes: float, rate: float, drain_s: float) -> dict:
    """Send ``rate`` events/s for ``minutes`` (one minute at a time), sampling RSS after each minute."""
    rss = [{"minute": 0, "mb": round(rss_mb(pid), 1)}]
    minute_ids: list[list[str]] = []
    started = time.time()
    whole, rest = int(minutes), minutes - int(minutes)
    for index, length in enumerate([1.0] * whole + ([rest] if rest > 0 else [])):
        minute_ids.append(load.send(round(rate * 60 * length), rate=rate, tag=f"m{index}"))
        rss.append({"minute": index + 1, "mb": round(rss_mb(pid), 1)})
    sent_ids = [i for ids in minute_ids for i in ids]
    load.collector.wait_for(sent_ids, drain_s)
    finished = time.time()
    rss.append({"minute": "end", "mb": round(rss_mb(pid), 1)})
    return _summary(load, minute_ids, sent_ids, rss, finished - started)


def _summary(load: Load, minute_ids, sent_ids, rss, seconds: float) -> dict:
    answered = [i for i in sent_ids if i in load.collector.arrivals]
    millis = {i: (load.collector.arrivals[i] - load.sent[i]) * 1000 for i in answered}
    start_mb, end_mb = rss[0]["mb"], rss[-1]["mb"]
    bound_mb = round(start_mb * RSS_FACTOR + RSS_SLACK_MB, 1)
    return {
        "events_in": len(sent_ids),
        "answered_distinct": len(answered),
        "dlq": sum(i in load.collector.failed for i in answered),
        "lost": len(sent_ids) - len(answered),
        "throughput_per_s": round(len(answered) / seconds, 3),
        "latency_ms": percentiles(list(millis.values()), (50, 99)) if millis else None,
        "latency_ms_per_minute": [
            percentiles([millis[i] for i in ids if i in millis], (50, 99)) if any(i in millis for i in ids) else None
            for ids in minute_ids
        ],
        "rss_mb": rss,
        "rss_bound": {"rule": f"end <= start * {RSS_FACTOR} + {RSS_SLACK_MB} MB", "start_mb": start_mb,
                      "end_mb": end_mb, "bound_mb": bound_mb, "pass": end_mb <= bound_mb},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=3.0, help="events per second (open loop)")
    parser.add_argument("--clips", type=int, default=4, help="synthetic world clips cycled over")
    parser.add_argument("--name", default="cpu-2core")
    parser.add_argument("--drain-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    videos = synthetic_videos(CACHE_DIR / "synthetic", args.clips)
    engines = newest_engines(ENGINES_DIR)
    if not engines:
        raise SystemExit(f"no engines under {ENGINES_DIR}")
    results = {"command": "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv),
               "machine": machine.describe(), "load_average_at_start": machine.load_average(),
               "minutes": args.minutes, "rate_per_s": args.rate,
               "videos": [v.as_dict() for v in videos], "settings": "worker defaults + bench/worker_proc.py"}
    with broker() as kafka:
        create_topics(kafka)
        setup = Setup(kafka, videos, engines[0].version_dir.parent.parent, CACHE_DIR / "logs", {})
        with workers(setup, 1, f"soak{int(time.time())}") as (procs, load):
            results |= soak(load, procs[0].pid, args.minutes, args.rate, args.drain_s)
    results["load_average_at_end"] = machine.load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{args.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("events_in", "lost", "dlq", "throughput_per_s", "latency_ms",
                                              "rss_bound")}, indent=1))
    print(f"wrote {out}")
    return 0 if results["lost"] == 0 and results["rss_bound"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
