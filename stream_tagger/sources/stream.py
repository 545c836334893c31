"""A seekable, read-only byte stream that fetches ranges of a video only when they are read.

PyAV reads it as a file object. A read that misses the cache fetches the bytes asked for plus a
read-ahead, clipped to the object's size and to what is left of the byte budget. The read-ahead
starts small and doubles while misses are sequential (up to ``MAX_WINDOW_FACTOR`` times), so a
header costs one small request and a run of early packets few large ones; a seek resets it. The
last few blocks stay cached, so the seek back from a ``moov`` at the end to the first packets costs
no new request.
Seeking never fetches. Every byte fetched counts against one ``FetchBudget`` (bytes and a total
wall-clock deadline), shared with the reader, because a server that ignores Range sends more than it
was asked for and only the reader sees those bytes.

The first error a read raises is kept (``failure``): PyAV sometimes drops an exception raised inside
its read callback and carries on as if the file had ended, and a tag computed from part of a video
must not look like a good one.
"""

from __future__ import annotations

import io
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from stream_tagger.errors import EventError, FetchFailed, FetchTimeout, TooLarge

MAX_WINDOW_FACTOR = 8


class RangeReader(Protocol):
    """Where the bytes come from: a local file, an HTTP server, an object store."""

    #: The object's size in bytes; known once the first ``read_range`` returned.
    size: int | None

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, shorter only where the object ends. Raises EventError."""
        ...

    def close(self) -> None: ...


@dataclass
class FetchBudget:
    """The bytes and the time one fetch may use, and what it used (bytes received, requests sent)."""

    max_bytes: int
    deadline: float  # time.monotonic()
    what: str = "fetch_timeout_s"
    bytes_fetched: int = 0
    requests: int = 0

    @classmethod
    def starting_now(cls, max_bytes: int, timeout_s: float) -> FetchBudget:
        return cls(max_bytes, time.monotonic() + timeout_s, f"fetch_timeout_s={timeout_s:g}")

    @property
    def bytes_left(self) -> int:
        return self.max_bytes - self.bytes_fetched

    def take(self, count: int) -> None:
        """Account for ``count`` bytes about to be received; TooLarge past ``max_bytes``."""
        if count > self.bytes_left:
            raise TooLarge(
                f"reading {count} more bytes after {self.bytes_fetched} exceeds max_fetch_bytes={self.max_bytes}"
            )
        self.bytes_fetched += count

    def seconds_left(self) -> float:
        """Time left before the deadline (for socket timeouts); FetchTimeout once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchTimeout(f"reading the video took longer than {self.what}")
        return left

    def cap_deadline(self, deadline: float, what: str) -> None:
        """Tighten the deadline (the decode's own deadline covers the reads made while decoding)."""
        if deadline < self.deadline:
            self.deadline, self.what = deadline, what


@dataclass
class _Blocks:
    """The last ``capacity`` fetched spans, least recently used first."""

    capacity: int
    spans: OrderedDict[int, bytes] = field(default_factory=OrderedDict)

    def find(self, position: int) -> tuple[int, bytes] | None:
        for start, data in self.spans.items():
            if start <= position < start + len(data):
                self.spans.move_to_end(start)
                return start, data
        return None

    def add(self, start: int, data: bytes) -> None:
        self.spans[start] = data
        self.spans.move_to_end(start)
        while len(self.spans) > self.capacity:
            self.spans.popitem(last=False)


class RangeStream(io.RawIOBase):
    """A file object over a RangeReader: ``read``/``seek``/``tell``; closing it reports what it fetched."""

    def __init__(
        self,
        reader: RangeReader,
        budget: FetchBudget,
        readahead: int,
        cached_blocks: int = 4,
        on_close: Callable[[RangeStream], None] | None = None,
        scheme: str = "",
    ) -> None:
        super().__init__()
        self._reader = reader
        self.budget = budget
        self._readahead = readahead
        self._window = readahead
        self._last_end = -1
        self._blocks = _Blocks(max(1, cached_blocks))
        self._position = 0
        self._on_close = on_close
        self.scheme = scheme
        #: The first error a read raised (see the module docstring).
        self.failure: EventError | None = None

    # ---- what PyAV calls -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: None}[whence]
        if base is None:
            base = self.size
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        try:
            data = self._read_some(size)
        except EventError as exc:
            self.failure = self.failure or exc
            raise
        self._position += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(max(self._readahead, io.DEFAULT_BUFFER_SIZE)):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._reader.close()
        finally:
            self._blocks.spans.clear()
            super().close()
            if self._on_close is not None:
                self._on_close(self)

    # ---- what the tagger uses --------------------------------------------------------------------
    @property
    def size(self) -> int:
        if self._reader.size is None:
            self.prime()
        assert self._reader.size is not None
        return self._reader.size

    @property
    def bytes_fetched(self) -> int:
        return self.budget.bytes_fetched

    @property
    def requests(self) -> int:
        return self.budget.requests

    def prime(self) -> None:
        """Fetch the first block now when the size is not known yet (network readers), so connection
        errors, refusals and the size come at open time; a local file is already open and sized."""
        try:
            if self._reader.size is None and self._blocks.find(0) is None:
                self._fetch(0, 1)
        except EventError as exc:
            self.failure = self.failure or exc
            raise

    def raise_failure(self) -> None:
        """Raise the first error a read raised, if any (PyAV may have swallowed it)."""
        if self.failure is not None:
            raise self.failure

    # ---- internals -------------------------------------------------------------------------------
    def _read_some(self, size: int) -> bytes:
        """Up to ``size`` bytes at the current position; fewer at a block's end, none only at EOF."""
        if size == 0:
            return b""
        found = self._blocks.find(self._position)
        if found is None:
            if self._reader.size is not None and self._position >= self._reader.size:
                return b""
            found = self._fetch(self._position, size)
            if found is None:
                return b""
        start, data = found
        offset = self._position - start
        return data[offset : offset + size]

    def _fetch(self, start: int, wanted: int) -> tuple[int, bytes] | None:
        sequential = start == self._last_end
        self._window = min(self._window * 2, self._readahead * MAX_WINDOW_FACTOR) if sequential else self._readahead
        span = max(wanted, self._window)
        if self.budget.bytes_left >= wanted:  # read-ahead never spends the budget the read itself needs
            span = min(span, self.budget.bytes_left)
        end = start + span
        if self._reader.size is not None:
            end = min(end, self._reader.size)
        data = self._reader.read_range(start, end)
        if not data:
            if self._reader.size is not None and start >= self._reader.size:
                return None
            raise FetchFailed(f"no bytes at offset {start} of a {self._reader.size}-byte object", retryable=True)
        self._blocks.add(start, data)
        self._last_end = start + len(data)
        return start, data
