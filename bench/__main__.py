"""``python -m bench``: every benchmark in one run, one JSON and one PNG in bench/results/."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from bench import (
    cpu,
    decode_bound,
    decode_variants,
    delivery,
    fragments,
    inference,
    machine,
    naive,
    plot,
    range_reads,
    steady,
    worker_bench,
    worker_proc,
)
from bench.engines import ENGINES_DIR, decode_policies, newest_engines, total_parameters
from bench.kafka_io import broker
from bench.stats import ratio
from bench.videos import CACHE_DIR, video_set
from stream_tagger.engines.tiny import write_tiny_repository

PHASES = ("decode", "variants", "naive", "inference", "worker", "latency", "profile", "scaling", "sources", "fragments",
          "delivery")
#: Phases that run only when named in --only (each starts its own worker sessions).
ON_REQUEST = {"fragments", "delivery"}
WORKER_PHASES = {"worker", "latency", "profile", "scaling", "delivery"}
KAFKA_PHASES = WORKER_PHASES | {"naive"}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    phases = _phases(args.only)
    results = _start(args)
    out = args.out_dir / f"{results['name']}.json"
    videos = video_set(quick=args.quick)
    engines, stand_in = _engines(args.engines_dir)
    results |= {
        "videos": [v.as_dict() for v in videos],
        "engines": {"stand_in": stand_in, "versions": {e.name: e.manifest.ref for e in engines}},
    }
    policies = decode_policies(engines)

    def run(phase: str, work) -> None:
        if phase in phases:
            _phase(results, phase, work, out)

    # With the worker in the run, the steady decode bound is measured in its alternation instead.
    run("decode", lambda: decode_bound.measure(videos, policies, args.repetitions, "worker" not in phases))
    run("variants", lambda: decode_variants.measure(videos, policies, args.repetitions))
    run("inference", lambda: inference.measure(engines, args.repetitions))
    run("sources", lambda: range_reads.measure(args.repetitions, engines[0].version_dir.parent.parent))
    run("fragments", lambda: fragments.measure(videos, args.engines_dir, args.repetitions, args.quick, args.bootstrap,
                                               dict(kv.split("=", 1) for kv in args.worker_env)))
    if phases & KAFKA_PHASES:
        _kafka_phases(results, phases, args, videos, engines, out)
    _finish(results, out)
    print(json.dumps(results["summary"], indent=2))
    return 0


def _kafka_phases(results: dict, phases: set[str], args, videos, engines, out: Path) -> None:
    """Naive baseline and the worker, on one broker (the local Tansu unless --bootstrap)."""
    policies = decode_policies(engines)
    overrides = dict(kv.split("=", 1) for kv in args.worker_env)
    with broker(args.bootstrap) as kafka:
        results["broker"] = {
            "bootstrap": kafka.bootstrap,
            "kind": "external" if args.bootstrap else "LocalBroker",
        }
        results["worker"] = {
            "command": " ".join(worker_proc.worker_command()),
            "setting_overrides": overrides,
        }
        if "naive" in phases:
            _phase(
                results,
                "naive",
                lambda: naive.measure(
                    kafka.bootstrap, kafka, videos, policies[0], total_parameters(engines), args.repetitions
                ),
                out,
            )
        if not phases & WORKER_PHASES:
            return
        worker_bench.create_topics(kafka)
        setup = worker_bench.Setup(
            kafka, videos, engines[0].version_dir.parent.parent, CACHE_DIR / "logs", overrides
        )
        try:
            _worker_phases(results, phases, setup, args, policies, out)
        except Exception as exc:  # e.g. the worker would not start: keep the other figures
            traceback.print_exc()
            results["worker"]["error"] = f"{type(exc).__name__}: {exc}"[:2000]


def _worker_phases(results: dict, phases: set[str], setup, args, policies, out: Path) -> None:
    seconds = 8 if args.quick else 30
    window, skip = (40, 8) if args.quick else (steady.WINDOW_EVENTS, steady.SKIP)
    events = steady.repetition_events(window, skip)
    timeout_s = max(setup.timeout_s, float(events))
    if phases & {"worker", "latency", "profile"}:
        with worker_bench.workers(setup, 1, "one") as (procs, load):
            groups = cpu.Groups(worker=procs[0].pid, broker=getattr(setup.broker, "pid", None))

            def alternation() -> dict:
                measured = steady.alternate(
                load, procs, setup.videos, policies, groups, args.repetitions, events, skip, timeout_s
            )
                results["steady"] = measured
                results["decode"] = (results.get("decode") or {}) | measured["decode_bound"]
                return results["worker"] | measured["worker"] | {"events_per_repetition": events, "skipped_at_each_end": skip}

            _phase(results, "worker", alternation, out)
            max_rate = ((results.get("worker") or {}).get("videos_per_s") or {}).get("median")
            if max_rate and "latency" in phases:
                _phase(
                    results,
                    "latency",
                    lambda: worker_bench.latency(load, max_rate, [0.25, 0.5, 0.9], seconds, timeout_s),
                    out,
                )
            if max_rate and "profile" in phases:
                raw = args.out_dir / f"{results['name']}-profile.txt"
                _phase(
                    results,
                    "profile",
                    lambda: worker_bench.profile_under_load(load, procs[0], max_rate, 20, raw, timeout_s),
                    out,
                )
    if "delivery" in phases:  # at-least-once and exactly-once, one session each (bench/delivery.py)
        _phase(results, "delivery", lambda: delivery.measure(setup, args.repetitions, events, skip, timeout_s, seconds), out)
    if "scaling" in phases:
        with worker_bench.workers(setup, 2, "two") as (procs, load):
            groups = cpu.Groups(worker=procs[0].pid, broker=getattr(setup.broker, "pid", None))
            _phase(
                results,
                "scaling",
                lambda: worker_bench.throughput(load, args.repetitions, events, skip, timeout_s, groups) | {"workers": 2},
                out,
            )


def _phase(results: dict, phase: str, work, out: Path) -> None:
    """Run one benchmark; a failure is recorded in the results instead of losing the others."""
    print(f"[bench] {phase} … (load {machine.load_average()})", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        results[phase] = work()
    except Exception as exc:  # one broken phase must not lose the others' figures
        traceback.print_exc()
        results[phase] = {"error": f"{type(exc).__name__}: {exc}"}
    results["phase_seconds"][phase] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _start(args) -> dict:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "name": args.name or time.strftime("run-%Y%m%d-%H%M%S", time.gmtime()),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "quick": args.quick,
        "repetitions": args.repetitions,
        "machine": machine.describe(),
        "phase_seconds": {},
    }


def _engines(engines_dir: Path):
    engines = newest_engines(engines_dir)
    if engines:
        return engines, False
    stand_in = CACHE_DIR / "tiny_engines"
    if not newest_engines(stand_in):
        write_tiny_repository(stand_in)
    return newest_engines(stand_in), True


#: The phases bench.plot draws (throughput, inference, latency panels).
PLOTTED_PHASES = ("decode", "naive", "worker", "scaling", "inference", "latency")


def _finish(results: dict, out: Path) -> None:
    worker = (results.get("worker") or {}).get("videos_per_s")
    decode = (results.get("decode") or {}).get("videos_per_s")
    naive_rate = (results.get("naive") or {}).get("videos_per_s")
    two = (results.get("scaling") or {}).get("videos_per_s")
    latency = results.get("latency") or {}
    p50_25 = ((latency.get("25%") or {}).get("latency_ms") or {}).get("p50")
    p99_50 = ((latency.get("50%") or {}).get("latency_ms") or {}).get("p99")
    paired = (results.get("steady") or {}).get("paired") or {}
    summary = {
        "worker_over_decode_bound": ratio(worker, decode),
        "worker_over_decode_bound_paired": (paired.get("worker_over_decode_bound") or {}).get("median"),
        "served_decode_bound_over_today_paired": (paired.get("served_over_today") or {}).get("median"),
        "worker_over_naive": ratio(worker, naive_rate),
        "two_workers_over_one": ratio(two, worker),
        "served_decode_bound_over_today": (results.get("decode") or {}).get("served_over_today"),
        "p99_at_50pct_over_p50_at_25pct": round(p99_50 / p50_25, 2) if p50_25 and p99_50 else None,
        "same_ratio_per_video": _per_video_latency_ratio(latency),
        "load_average_at_end": machine.load_average(),
    }
    summary["acceptance"] = {
        "worker >= 15x naive": _at_least(summary["worker_over_naive"], 15),
        "worker >= 0.9x decode bound": _at_least(summary["worker_over_decode_bound"], 0.9),
        "worker >= 0.9x decode bound, paired by round": _at_least(summary["worker_over_decode_bound_paired"], 0.9),
        "served decode bound >= 1.15x today's": _at_least(summary["served_decode_bound_over_today"], 1.15),
        "served decode bound >= 1.15x today's, paired by round":
            _at_least(summary["served_decode_bound_over_today_paired"], 1.15),
        "p99@50% <= 3x p50@25%": None
        if summary["p99_at_50pct_over_p50_at_25pct"] is None
        else summary["p99_at_50pct_over_p50_at_25pct"] <= 3,
    }
    results["summary"] = summary
    out.write_text(json.dumps(results, indent=2) + "\n")
    if any(results.get(phase) for phase in PLOTTED_PHASES):  # e.g. --only fragments has nothing to draw
        results["plot"] = plot.draw(results, out.with_suffix(".png")).name
        out.write_text(json.dumps(results, indent=2) + "\n")


def _per_video_latency_ratio(latency: dict) -> dict:
    """The latency criterion per video: without the spread of service times between video sizes."""
    low = (latency.get("25%") or {}).get("latency_ms_by_video") or {}
    mid = (latency.get("50%") or {}).get("latency_ms_by_video") or {}
    return {v: round(mid[v]["p99"] / low[v]["p50"], 2) for v in low if v in mid and low[v]["p50"]}


def _at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def _phases(only: str | None) -> set[str]:
    if not only:
        return set(PHASES) - ON_REQUEST
    chosen = {p.strip() for p in only.split(",") if p.strip()}
    unknown = chosen - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {sorted(unknown)}; choose from {', '.join(PHASES)}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(PHASES)}")
    parser.add_argument(
        "--quick", action="store_true", help="half the videos, short repetitions (a harness check, not steady state)"
    )
    parser.add_argument("--repetitions", type=int, default=3, help="repetitions per figure (>= 3)")
    parser.add_argument("--name", help="result file name (default run-<UTC time>)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--engines-dir", type=Path, default=ENGINES_DIR)
    parser.add_argument("--bootstrap", help="use this broker instead of starting the local one")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra STREAM_TAGGER_* setting for the worker (default settings otherwise)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
