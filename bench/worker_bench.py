"""stream-tagger itself: the real worker through the real local broker, default settings.

One worker session measures steady-state throughput (``bench.steady``: worker and decode bound
alternating), then latency under an open-loop load at fractions of that maximum, then a profile under
load; a second session runs two workers in one consumer group to see how this 2-core machine scales.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import cpu, profile, steady
from bench.kafka_io import RecordCollector
from bench.load import Load
from bench.stats import summarise
from bench.videos import Video
from bench.worker_proc import WorkerProcess, worker_env

INPUT, OUTPUT, DLQ = "videos.new", "videos.tags", "videos.tags.dlq"
PARTITIONS = 2  # as many as the most workers we start, so each gets a share


@dataclass
class Setup:
    broker: object
    videos: list[Video]
    engines_dir: Path
    log_dir: Path
    overrides: dict[str, str]
    timeout_s: float = 120.0


def create_topics(broker) -> None:
    broker.create_topic(INPUT, PARTITIONS)
    broker.create_topic(OUTPUT, 1)
    broker.create_topic(DLQ, 1)


@contextlib.contextmanager
def workers(setup: Setup, count: int, name: str,
            isolation_level: str = "read_uncommitted") -> Iterator[tuple[list[WorkerProcess], Load]]:
    """``count`` workers in one group, warmed up (engines loaded, partitions assigned, first videos done)."""
    collector = RecordCollector(setup.broker.bootstrap, [OUTPUT, DLQ], isolation_level)
    load = Load(setup.broker.bootstrap, INPUT, PARTITIONS, setup.videos, collector, session=name)
    media_root = setup.videos[0].path.parent
    procs = [
        WorkerProcess(
            worker_env(
                setup.broker.bootstrap, setup.engines_dir, media_root, f"bench-{name}-{i}", setup.overrides
            ),
            setup.log_dir / f"worker-{name}-{i}.log",
        )
        for i in range(count)
    ]
    try:
        _warm_up(load, procs, setup.timeout_s)
        yield procs, load
    finally:
        for proc in procs:
            proc.stop()
        load.close()
        collector.close()


def _warm_up(load: Load, procs: list[WorkerProcess], timeout_s: float) -> None:
    """Send a few events until every worker has answered one (so all have joined the group)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [p for p in procs if not p.alive()]
        if dead:
            raise RuntimeError(f"worker exited with {dead[0].process.returncode}:\n{dead[0].log_tail()}")
        ids = load.send(2 * len(procs), tag="warmup")
        load.collector.wait_for(ids, timeout_s=10)
        answered = {load.collector.records[i].get("worker") for i in ids if i in load.collector.records}
        if len(procs) == 1 and answered or len(answered) >= len(procs):
            return
    raise TimeoutError(f"workers did not all answer within {timeout_s:.0f}s:\n{procs[0].log_tail()}")


def throughput(load: Load, repetitions: int, events: int, skip: int, timeout_s: float, groups: cpu.Groups) -> dict:
    """Steady-state repetitions of the worker(s) alone (no decode bound in between)."""
    with cpu.Sampler(groups) as sampler:
        reps = [steady.worker_repetition(load, events, skip, timeout_s, sampler) for _ in range(repetitions)]
    return {
        "videos_per_s": summarise([r["videos_per_s"] for r in reps]),
        "events_per_repetition": events,
        "skipped_at_each_end": skip,
        "repetitions": reps,
        "failed": sum(r["failed"] for r in reps),
    }


def latency(load: Load, max_rate: float, fractions: list[float], seconds: float, timeout_s: float) -> dict:
    """Open-loop load at each fraction of ``max_rate`` for ``seconds`` each; the first 10 % of each
    level's events are its warm-up and left out (so each level is measured in steady state)."""
    out = {}
    for fraction in fractions:
        rate = fraction * max_rate
        count = max(20, math.ceil(rate * seconds))
        discard = math.ceil(0.1 * count)
        out[f"{round(fraction * 100)}%"] = load.latency(rate, count + discard, timeout_s, discard) | {
            "seconds": round((count + discard) / rate, 1)
        }
        time.sleep(1.0)  # let the queue drain before the next level
    return out


def profile_under_load(
    load: Load, proc: WorkerProcess, max_rate: float, seconds: int, out_path: Path, timeout_s: float
) -> dict:
    """py-spy on the worker (on-CPU stacks, and GIL holders) while a backlog keeps it busy throughout."""
    rate = 50
    gil_path = out_path.with_name(out_path.stem + "-gil.txt")
    recorders = [profile.start(proc.pid, seconds, out_path, rate), profile.start(proc.pid, seconds, gil_path, rate, gil=True)]
    time.sleep(0.5)  # let py-spy attach before the load arrives
    ids = load.send(math.ceil(max_rate * seconds * 1.3), tag="profile")
    before, started = profile.thread_cpu_seconds(proc.pid), time.monotonic()
    errors = [recorder.communicate(timeout=seconds + 60)[1] for recorder in recorders]
    after, wall = profile.thread_cpu_seconds(proc.pid), time.monotonic() - started
    load.collector.wait_for(ids, timeout_s)
    if recorders[0].returncode != 0 or not out_path.exists():
        return {"error": errors[0].decode(errors="replace")[-500:]}
    by_thread = profile.cores_by_thread(before, after, wall, out_path)
    gil = (
        profile.gil_summary(gil_path, rate, seconds) | {"raw": gil_path.name}
        if recorders[1].returncode == 0 and gil_path.exists()
        else {"error": errors[1].decode(errors="replace")[-500:]}
    )
    return profile.summarise(out_path) | {
        "raw": out_path.name,
        "seconds": seconds,
        "worker_cores_busy": round(sum(by_thread.values()), 2),
        "cores_by_thread": by_thread,
        "gil": gil,
    }
