"""Bounded retries with exponential backoff for the transient failures of one event (fetch, decode)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stream_tagger.errors import EventError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0

    def run(self, action: Callable[[], Any], sleep: Callable[[float], Any] = time.sleep) -> tuple[Any, int]:
        """Run ``action``; retry retryable EventErrors with backoff. Returns (value, attempts used);
        the final error carries ``attempts``."""
        for attempt in range(1, self.attempts + 1):
            try:
                return action(), attempt
            except EventError as exc:
                if not exc.retryable or attempt == self.attempts:
                    exc.attempts = attempt
                    raise
                sleep(min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")
