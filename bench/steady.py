"""Steady-state throughput: the worker and the decode bound, alternating A B A B in one run.

A repetition hands ``events`` videos to the system at once (for the worker: events on the input
topic, the backlog waits in Kafka and the worker pulls it at its own pace; for the decode bound:
tasks queued on a pool) and stamps each completion. Its rate is measured between the completion
``skip`` and the completion ``events - 1 - skip``, so filling and draining the pipeline stay
outside the figure; the window holds ``events - 1 - 2·skip`` completions (≥ 200 by default).

Worker (A) and decode-bound (B) repetitions alternate, so drift and neighbours hit both alike. A B
repetition measures every decode mode in turn, rotated from one repetition to the next, with the worker
frozen (SIGSTOP: an idle worker still polls Kafka) and the collector not fetching: the served
engines' sampling policies and "today's" (the same policies decoding every frame, deblocked: the setting
the worker had before a manifest could declare ``decode`` and ``deblock``), each on as many processes
as cores, on one more (what the worker runs: a core never waits while a process hands a result back),
and on as many threads as cores. The bound is the best of these, so a worker configuration can never
beat it by choosing a pool size the bound did not try.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

from bench import cpu
from bench.load import Load
from bench.stats import paired_by_round, summarise
from bench.videos import Video
from bench.worker_proc import WorkerProcess
from stream_tagger.cpus import usable_cpus
from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy

#: Completions left out at each end of a repetition: more than the worker's in-flight window needs to fill.
SKIP = 16
WINDOW_EVENTS = 200


@dataclass(frozen=True)
class DecodeMode:
    name: str
    policies: tuple[SamplingPolicy, ...]
    pool: str  # a key of Pools: "processes", "processes+1" or "threads"


def repetition_events(window_events: int = WINDOW_EVENTS, skip: int = SKIP) -> int:
    return window_events + 2 * skip + 1


def window_rate(times: list[float], skip: int) -> dict:
    """videos/s between the completion ``skip`` and the completion ``len - 1 - skip`` (sorted)."""
    ordered = sorted(times)
    first, last = ordered[skip], ordered[len(ordered) - 1 - skip]
    events = len(ordered) - 1 - 2 * skip
    return {
        "videos_per_s": round(events / (last - first), 4),
        "events_in_window": events,
        "window_s": round(last - first, 2),
        "start": first,
        "end": last,
    }


def today_policies(served: list[SamplingPolicy]) -> tuple[SamplingPolicy, ...]:
    """The served policies as the worker decoded them before the manifest could declare ``decode`` and
    ``deblock``: every frame, deblocked."""
    return tuple(dict.fromkeys(p.model_copy(update={"decode": "all", "deblock": True}) for p in served))


def decode_modes(served: list[SamplingPolicy]) -> list[DecodeMode]:
    """Served policies and today's, each on every pool of Pools."""
    modes = []
    for label, policies in (("served", tuple(served)), ("today (every frame)", today_policies(served))):
        for pool, size in Pools.sizes().items():
            modes.append(DecodeMode(f"{label}, {size} {pool.split('+')[0]}", policies, pool))
    return modes


@contextlib.contextmanager
def quiet(workers: Sequence[WorkerProcess], collector) -> Iterator[None]:
    """The worker(s) frozen and the collector not fetching: the decode bound runs with nothing else."""
    collector.pause()
    for worker in workers:
        worker.freeze()
    try:
        yield
    finally:
        for worker in workers:
            worker.thaw()
        collector.resume()


def alternate(
    load: Load,
    workers: Sequence[WorkerProcess],
    videos: list[Video],
    served: list[SamplingPolicy],
    groups: cpu.Groups,
    repetitions: int,
    events: int,
    skip: int,
    timeout_s: float,
) -> dict:
    """A B A B …: a worker repetition, then one of every decode mode (the worker frozen meanwhile);
    CPU use sampled throughout."""
    modes = decode_modes(served)
    worker_reps: list[dict] = []
    bound_reps: dict[str, list[dict]] = {mode.name: [] for mode in modes}
    order: list[str] = []
    paths = [str(v.path) for v in videos]
    with Pools() as pools, cpu.Sampler(groups) as sampler:
        sampler.thread_names = cpu.thread_names(groups.worker) if groups.worker else {}
        for rep in range(repetitions):
            worker_reps.append(worker_repetition(load, events, skip, timeout_s, sampler))
            order.append("worker")
            start = load.sequence  # the same cycle through the videos as the worker's next events
            cycle = [paths[(start + i) % len(paths)] for i in range(events)]
            with quiet(workers, load.collector):
                for mode in modes[rep % len(modes):] + modes[: rep % len(modes)]:
                    bound_reps[mode.name].append(bound_repetition(pools[mode.pool], cycle, mode, skip, sampler))
                    order.append(mode.name)
    return _summary(worker_reps, bound_reps, order, events, skip)


def worker_repetition(load: Load, events: int, skip: int, timeout_s: float, sampler: cpu.Sampler) -> dict:
    """The worker's rate over a backlog of ``events``: completions timed by their records' CreateTime,
    the collector polling only twice a second meanwhile (so it takes next to nothing from the worker)."""
    with load.collector.paced():
        ids = load.send(events, tag="steady")
        if not load.collector.wait_for(ids, timeout_s):
            missing = sum(i not in load.collector.arrivals for i in ids)
            raise TimeoutError(f"{missing}/{events} events got no record within {timeout_s:.0f}s")
    rate = window_rate([load.collector.produced[i] for i in ids], skip)
    failed = sum(i in load.collector.failed for i in ids)
    return rate | {"failed": failed, "cpu": sampler.usage_between(rate["start"], rate["end"])}


def bound_repetition(pool: Executor, paths: list[str], mode: DecodeMode, skip: int, sampler: cpu.Sampler) -> dict:
    done: list[float] = []
    futures = [pool.submit(decode_one, path, mode.policies) for path in paths]
    for future in futures:
        future.add_done_callback(lambda _: done.append(time.time()))
    frames = sum(f.result() for f in futures)
    while len(done) < len(futures):  # callbacks run on the pool's thread, just after the result
        time.sleep(0.001)
    rate = window_rate(done, skip)
    return rate | {
        "frames_decoded_per_video": round(frames / len(paths), 2),
        "cpu": sampler.usage_between(rate["start"], rate["end"]),
    }


def decode_one(path: str, policies: tuple[SamplingPolicy, ...]) -> int:
    decoder = make_decoder("pyav")
    try:
        return decoder.decode(path, policies).frames_decoded
    finally:
        decoder.close()


class Pools:
    """Warm pools of spawned processes (as many as cores, and one more) and of threads (as many as
    cores), kept for the whole alternation."""

    @staticmethod
    def sizes() -> dict[str, int]:
        cores = usable_cpus()  # what the worker's default decode_workers counts
        return {"processes": cores, "processes+1": cores + 1, "threads": cores}

    def __enter__(self) -> dict[str, Executor]:
        spawn = multiprocessing.get_context("spawn")
        self._pools: dict[str, Executor] = {
            name: ThreadPoolExecutor(size) if name == "threads" else ProcessPoolExecutor(size, mp_context=spawn)
            for name, size in self.sizes().items()
        }
        for pool in self._pools.values():  # start both processes and import the decoder in each
            list(pool.map(_warm, range(4)))
        return self._pools

    def __exit__(self, *exc) -> None:
        for pool in self._pools.values():
            pool.shutdown()


def _warm(_: int) -> None:
    import av  # noqa: F401

    time.sleep(0.05)


def _summary(worker_reps: list[dict], bound_reps: dict[str, list[dict]], order, events: int, skip: int) -> dict:
    return {
        "mode": "steady state",
        "events_per_repetition": events,
        "skipped_at_each_end": skip,
        "order": order,
        "worker": {"videos_per_s": summarise([r["videos_per_s"] for r in worker_reps]), "repetitions": worker_reps},
        "decode_bound": bound_summary(bound_reps),
        "paired": paired_by_round([r["videos_per_s"] for r in worker_reps],
                                  {name: [r["videos_per_s"] for r in reps] for name, reps in bound_reps.items()}),
    }


def bound_summary(bound_reps: dict[str, list[dict]]) -> dict:
    """The bound = the best served mode (median); today's = the best of today's modes."""
    figures = ("median", "min", "max", "spread", "values")
    by_mode = {
        name: summarise([r["videos_per_s"] for r in reps]) | {"repetitions": reps}
        for name, reps in bound_reps.items()
    }
    best = {}
    for label in ("served", "today"):
        name, summary = max(((k, v) for k, v in by_mode.items() if k.startswith(label)), key=lambda kv: kv[1]["median"])
        best[label] = (name, {k: summary[k] for k in figures})
    return {
        "videos_per_s": best["served"][1],
        "mode": best["served"][0],
        "today_videos_per_s": best["today"][1],
        "today_mode": best["today"][0],
        "served_over_today": round(best["served"][1]["median"] / best["today"][1]["median"], 3),
        "by_mode": by_mode,
    }
