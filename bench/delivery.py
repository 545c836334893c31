"""What exactly-once costs: the same worker with ``delivery=at_least_once`` and ``=exactly_once``, one run.

One worker session per mode, in turn, on the same broker, topics and videos, default settings except
the mode. Each session: steady-state throughput repetitions (``worker_bench.throughput``), then an
open-loop latency level at half the *at-least-once* maximum, the same offered load for both. Records
are collected ``read_committed``, which is what a downstream consumer of exactly-once output uses
(in at-least-once mode there are no transactions, so it reads the same as ``read_uncommitted``).
"""

from __future__ import annotations

from dataclasses import replace

from bench import cpu, worker_bench
from bench.stats import ratio

MODES = ("at_least_once", "exactly_once")
LATENCY_FRACTION = 0.5


def measure(setup: worker_bench.Setup, repetitions: int, events: int, skip: int, timeout_s: float,
            seconds: float) -> dict:
    out: dict = {"latency_load_fraction_of_at_least_once_max": LATENCY_FRACTION}
    reference_rate = None
    for mode in MODES:
        mode_setup = replace(setup, overrides={**setup.overrides, "STREAM_TAGGER_DELIVERY": mode})
        with worker_bench.workers(mode_setup, 1, f"delivery-{mode}", "read_committed") as (procs, load):
            groups = cpu.Groups(worker=procs[0].pid, broker=getattr(setup.broker, "pid", None))
            throughput = worker_bench.throughput(load, repetitions, events, skip, timeout_s, groups)
            reference_rate = reference_rate or throughput["videos_per_s"]["median"]
            latency = worker_bench.latency(load, reference_rate, [LATENCY_FRACTION], seconds, timeout_s)
        out[mode] = {"throughput": throughput, "latency": latency}
    out["exactly_once_over_at_least_once"] = _overhead(out)
    return out


def _overhead(out: dict) -> dict:
    alo, eos = out["at_least_once"], out["exactly_once"]
    level = f"{round(LATENCY_FRACTION * 100)}%"
    alo_ms = (alo["latency"][level].get("latency_ms") or {})
    eos_ms = (eos["latency"][level].get("latency_ms") or {})
    return {
        "throughput_ratio": ratio(eos["throughput"]["videos_per_s"], alo["throughput"]["videos_per_s"]),
        **{f"latency_{p}_ratio": round(eos_ms[p] / alo_ms[p], 3) if alo_ms.get(p) and eos_ms.get(p) else None
           for p in ("p50", "p99")},
    }
