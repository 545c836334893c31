"""Sample the running worker with py-spy and say where its CPU time goes.

py-spy attaches to the worker's pid (and its children, in case decoding runs in a process pool)
and records on-CPU stacks. Time inside C extensions (FFmpeg, ONNX Runtime) is charged to the
Python line that called them, which is what we want to attribute it to a stage.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

from bench import cpu

#: Stage of a stack = first of these markers found in it, innermost frame first.
STAGES = (
    ("decode", ("stream_tagger/decode", "/av/")),
    ("inference", ("stream_tagger/runtime", "onnxruntime")),
    ("kafka", ("/kafka/",)),
    ("serialisation", ("/json/", "pydantic")),
    ("metrics", ("prometheus_client",)),
)


def start(pid: int, seconds: int, out_path: Path, rate: int = 50, gil: bool = False) -> subprocess.Popen:
    """Begin recording ``pid`` for ``seconds``; the caller puts the worker under load meanwhile.

    ``gil``: record only the thread holding the GIL at each sample (``py-spy --gil``), in ``pid`` only
    (a decode process has a GIL of its own), so the samples say how much of the wall time the GIL
    was held, and by which thread.
    """
    py_spy = cpu.py_spy_path()
    if py_spy is None:
        raise RuntimeError("profiling needs py-spy (pip install py-spy)")
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        *([] if gil else ["--subprocesses"]),
        *(["--gil"] if gil else []),
        "--threads",
        "--nonblocking",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(out_path),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise(raw_path: Path, top: int = 12) -> dict:
    """Share of samples per stage and per thread, top functions by self and by inclusive samples."""
    stacks, threads = _read(raw_path)
    total = sum(stacks.values()) or 1
    stage, self_time, inclusive = Counter(), Counter(), Counter()
    for frames, count in stacks.items():
        stage[_stage(frames)] += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = lambda counter: [(name, round(n / total, 3)) for name, n in counter.most_common(top)]
    return {
        "samples": total,
        "stage_share": {name: round(n / total, 3) for name, n in stage.most_common()},
        "thread_share": {name: round(n / total, 3) for name, n in threads.most_common()},
        "top_self": share(self_time),
        "top_inclusive": share(inclusive),
    }


def gil_summary(raw_path: Path, rate: int, seconds: float) -> dict:
    """Share of the wall time some thread held the GIL, overall and by thread (from a ``gil`` recording).

    Sampling ticks where no thread held the GIL leave no sample, so held share = samples / ticks.
    """
    _, threads = _read(raw_path)
    ticks = rate * seconds
    return {
        "gil_held_share": round(sum(threads.values()) / ticks, 3),
        "gil_held_share_by_thread": {name: round(n / ticks, 3) for name, n in threads.most_common()},
    }


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds used so far by each thread of ``pid`` (exact, from the kernel)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cores_by_thread(
    before: dict[int, float], after: dict[int, float], seconds: float, raw_path: Path
) -> dict:
    """Cores each named thread kept busy between two snapshots (names from py-spy's thread frames)."""
    names = _thread_names(raw_path)
    cores: Counter = Counter()
    for tid, used in after.items():
        name = names.get(tid, "unnamed (native or idle)")
        cores[name.rstrip("0123456789_") or name] += (used - before.get(tid, 0.0)) / seconds
    return {name: round(value, 3) for name, value in cores.most_common() if value >= 0.005}


def _thread_names(raw_path: Path) -> dict[int, str]:
    names = {}
    for line in raw_path.read_text(errors="replace").splitlines():
        head = line.split(";", 2)
        frame = next((f for f in head if f.startswith("thread (")), None)
        if frame:
            tid, _, name = frame[len("thread (") :].partition("): ")
            if tid.isdigit():
                names[int(tid)] = name
    return names


def _read(raw_path: Path) -> tuple[Counter, Counter]:
    stacks: Counter = Counter()
    threads: Counter = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        thread = next((f.split(": ", 1)[-1] for f in frames if f.startswith("thread ")), "?")
        threads[thread.rstrip("0123456789_") or thread] += int(count)
        kept = tuple(f for f in frames if not f.startswith(("process ", "thread ")))
        stacks[kept or ("<unknown>",)] += int(count)
    return stacks, threads


def _stage(frames: tuple[str, ...]) -> str:
    for frame in reversed(frames):
        for name, markers in STAGES:
            if any(marker in frame for marker in markers):
                return name
    return "other"
