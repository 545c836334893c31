"""Where the 2 cores went during a repetition: per core, per process, per worker thread (from /proc).

A sampler thread snapshots the kernel's counters twice a second; a repetition's figures are the
difference between the snapshots that bracket its steady window:

- per core (``/proc/stat``): busy, idle, iowait, steal — the idle share is capacity nobody used;
- per process (``/proc/<pid>/stat``): the worker, its children (decode processes), the broker, this
  bench process (load generator and collector), and "other" = busy cores not accounted for by those
  (other engineers' jobs on a shared machine);
- per worker thread (``/proc/<pid>/task/<tid>/{stat,schedstat}``): on-CPU cores, cores spent
  runnable but waiting for a CPU (run-queue wait), and the rest of the wall time off-CPU — for a
  decode thread that always has work (a saturated worker), off-CPU time is waiting for the GIL or I/O.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.time(), the clock the collector stamps arrivals with
    cores: dict[str, list[int]]  # cpuN -> /proc/stat jiffies
    processes: dict[str, float]  # group -> CPU seconds
    threads: dict[int, tuple[float, float]]  # worker tid -> (CPU seconds, run-queue wait seconds)


@dataclass
class Groups:
    """The processes to account for, by label; ``worker`` also gets per-thread figures."""

    worker: int | None = None
    broker: int | None = None
    bench: int = field(default_factory=os.getpid)


def take(groups: Groups) -> Snapshot:
    processes: Counter = Counter()
    if groups.worker is not None:
        processes["worker"] = _process_seconds(groups.worker)
        processes["worker children (decode processes)"] = sum(
            _process_seconds(child) for child in children(groups.worker)
        )
    if groups.broker is not None:
        processes["broker"] = _process_seconds(groups.broker)
    processes["bench (load, collector, decode-bound pool)"] = _process_seconds(groups.bench) + sum(
        _process_seconds(child) for child in children(groups.bench) if child not in (groups.worker, groups.broker)
    )
    threads = _threads(groups.worker) if groups.worker is not None else {}
    return Snapshot(time.time(), _cores(), dict(processes), threads)


def usage(before: Snapshot, after: Snapshot, thread_names: dict[int, str] | None = None) -> dict:
    """Cores used between two snapshots: per core, per process group, per worker thread."""
    wall = after.at - before.at
    cores = {}
    busy_total = 0.0
    for name, now in after.cores.items():
        then = before.cores.get(name)
        if then is None:
            continue
        delta = [b - a for a, b in zip(then, now)]
        total = sum(delta[:8]) or 1
        busy = total - delta[3] - delta[4] - delta[7]
        busy_total += busy / total
        cores[name] = {
            "busy": round(busy / total, 3),
            "idle": round(delta[3] / total, 3),
            "iowait": round(delta[4] / total, 3),
            "steal": round(delta[7] / total, 3),
        }
    processes = {
        group: round((after.processes.get(group, 0.0) - seconds) / wall, 3)
        for group, seconds in before.processes.items()
    }
    processes["other processes (not this bench)"] = round(max(0.0, busy_total - sum(processes.values())), 3)
    return {
        "seconds": round(wall, 1),
        "cores": cores,
        "busy_cores": round(busy_total, 3),
        "processes_cores": processes,
        "worker_threads": _thread_usage(before, after, wall, thread_names or {}),
    }


def _thread_usage(before: Snapshot, after: Snapshot, wall: float, names: dict[int, str]) -> dict:
    grouped: dict[str, list[float]] = {}
    for tid, (cpu, waited) in after.threads.items():
        cpu0, waited0 = before.threads.get(tid, (cpu, waited))
        name = _group_name(names.get(tid, "unnamed (native: ONNX Runtime, ffmpeg, kafka IO)"))
        acc = grouped.setdefault(name, [0.0, 0.0, 0])
        acc[0] += (cpu - cpu0) / wall
        acc[1] += (waited - waited0) / wall
        acc[2] += 1
    out = {}
    for name, (cpu, waited, count) in sorted(grouped.items(), key=lambda kv: -kv[1][0]):
        if cpu < 0.005 and waited < 0.005:
            continue
        out[name] = {
            "threads": count,
            "on_cpu": round(cpu, 3),
            "runqueue_wait": round(waited, 3),
            # Wall time of these threads neither running nor runnable: sleeping on the GIL, on I/O or for work.
            "off_cpu": round(max(0.0, count - cpu - waited), 3),
        }
    return out


def _group_name(name: str) -> str:
    return re.sub(r"[-_]?\d+$", "", name) or name


class Sampler:
    """Snapshots every ``interval_s`` in a thread; ``usage_between`` picks the bracketing pair."""

    def __init__(self, groups: Groups, interval_s: float = 0.5) -> None:
        self.groups = groups
        self.thread_names: dict[int, str] = {}
        self._interval = interval_s
        self._snapshots: list[Snapshot] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._snapshots.append(take(self.groups))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def usage_between(self, start: float, end: float) -> dict:
        """Usage over the snapshots nearest inside [start, end] (time.time() values)."""
        times = [s.at for s in self._snapshots]
        first = min(bisect.bisect_left(times, start), len(times) - 1)
        last = max(bisect.bisect_right(times, end) - 1, first)
        if last == first:
            return {"error": "window shorter than the sampling interval"}
        return usage(self._snapshots[first], self._snapshots[last], self.thread_names)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._snapshots.append(take(self.groups))


def py_spy_path() -> str | None:
    """py-spy on PATH, or beside this interpreter (a virtualenv run as ``.venv/bin/python``, not activated)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def thread_names(pid: int) -> dict[int, str]:
    """tid -> Python thread name of a running process (one ``py-spy dump``; empty without py-spy)."""
    py_spy = py_spy_path()
    if py_spy is None:
        return {}
    try:
        out = subprocess.run(
            [py_spy, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(tid): name for tid, name in re.findall(r'^Thread (\d+) \([^)]*\): "([^"]*)"', out, re.MULTILINE)}


def _cores() -> dict[str, list[int]]:
    out = {}
    for line in (_PROC / "stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            out[name] = [int(v) for v in values[:8]]
    return out


def _process_seconds(pid: int) -> float:
    """utime + stime of a live process (its threads included; reaped children not)."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _threads(pid: int) -> dict[int, tuple[float, float]]:
    out = {}
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            waited_ns = int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out[int(task.name)] = ((int(fields[11]) + int(fields[12])) / _TICK, waited_ns / 1e9)
    return out
