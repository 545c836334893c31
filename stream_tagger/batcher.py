"""Dynamic batching: a batch closes when it holds ``max_size`` items or ``max_wait_s`` after its first."""

from __future__ import annotations

import queue
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, source: queue.Queue[T], max_size: int, max_wait_s: float) -> None:
        self.source = source
        self.max_size = max_size
        self.max_wait_s = max_wait_s

    def next_batch(self, idle_timeout_s: float = 0.1) -> list[T]:
        """The next batch; empty when nothing arrived within ``idle_timeout_s`` (so callers can stop)."""
        try:
            batch = [self.source.get(timeout=idle_timeout_s)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self.source.get(timeout=remaining) if remaining > 0 else self.source.get_nowait()
                )
            except queue.Empty:
                break
        return batch
