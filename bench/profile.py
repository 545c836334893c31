"""Sample the running worker with py-spy and say where its CPU time goes.

py-spy attaches to the worker's pid (and its children, in case decoding runs in a process pool)
and records on-CPU stacks. Time inside C extensions (FFmpeg, ONNX Runtime) is charged to the
Python line that called them, which is what we want to attribute it to a stage.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

#: Stage of a stack = first of these markers found in it, innermost frame first.
STAGES = (
    ("decode", ("stream_tagger/decode", "/av/")),
    ("inference", ("stream_tagger/runtime", "onnxruntime")),
    ("kafka", ("/kafka/",)),
    ("serialisation", ("/json/", "pydantic")),
    ("metrics", ("prometheus_client",)),
)


def start(pid: int, seconds: int, out_path: Path, rate: int = 50) -> subprocess.Popen:
    """Begin recording ``pid`` for ``seconds``; the caller puts the worker under load meanwhile."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("profiling needs py-spy (pip install py-spy)")
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
               "--subprocesses", "--nonblocking", "--full-filenames", "--format", "raw", "--output", str(out_path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise(raw_path: Path, top: int = 12) -> dict:
    """Share of samples per stage, top functions by self and by inclusive samples."""
    stacks = _read(raw_path)
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
        "top_self": share(self_time),
        "top_inclusive": share(inclusive),
    }


def _read(raw_path: Path) -> Counter:
    stacks: Counter = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = tuple(f for f in stack.split(";") if not f.startswith(("process ", "thread ")))
            stacks[frames or ("<unknown>",)] += int(count)
    return stacks


def _stage(frames: tuple[str, ...]) -> str:
    for frame in reversed(frames):
        for name, markers in STAGES:
            if any(marker in frame for marker in markers):
                return name
    return "other"
