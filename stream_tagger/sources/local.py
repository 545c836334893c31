"""``file://`` ranges: ``os.pread`` on one descriptor, counted against the same budget as a download."""

from __future__ import annotations

import os
from pathlib import Path

from stream_tagger.errors import FetchFailed
from stream_tagger.sources.stream import FetchBudget


class LocalReader:
    def __init__(self, path: Path, budget: FetchBudget) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise FetchFailed(f"no such file: {path}") from exc
        except OSError as exc:
            raise FetchFailed(f"cannot open {path}: {exc.strerror}") from exc
        self._path = path
        self._budget = budget
        self.size: int | None = os.fstat(self._fd).st_size

    def read_range(self, start: int, end: int) -> bytes:
        self._budget.seconds_left()
        self._budget.take(end - start)
        try:
            data = os.pread(self._fd, end - start, start)
        except OSError as exc:
            raise FetchFailed(f"reading {self._path} failed: {exc.strerror}", retryable=True) from exc
        if len(data) < end - start:  # the file shrank under us: whatever we decode would be partial
            raise FetchFailed(f"{self._path} ended at {start + len(data)}, expected {end} bytes", retryable=True)
        return data

    def close(self) -> None:
        os.close(self._fd)
