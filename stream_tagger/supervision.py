"""Long-lived threads that cannot die silently.

Every thread the worker starts runs its loop through :func:`start_supervised`. An exception that
escapes the loop is logged with its traceback, counted in ``stream_tagger_thread_failures_total``, and
reported to ``on_fatal``, which stops the worker: ``/healthz`` and ``/readyz`` then fail and the
process exits non-zero, so Kubernetes restarts it. There is no state where the process is alive,
reports ready, and does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from stream_tagger.metrics import Metrics

log = logging.getLogger(__name__)

OnFatal = Callable[[str, BaseException], None]


def start_supervised(name: str, loop: Callable[[], None], metrics: Metrics, on_fatal: OnFatal) -> threading.Thread:
    """Run ``loop`` on a daemon thread called ``name``; an escaping exception is fatal to the worker."""

    def run() -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 (whatever it was, the worker must not go on without it)
            try:
                log.critical("thread failed", exc_info=True, extra={"failed_thread": name, "error": repr(exc)[:500]})
                metrics.thread_failures.labels(thread=name).inc()
            finally:  # even if reporting fails, the worker must stop
                on_fatal(name, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class Lifecycle:
    """The stop and failure state of a process's main loop, shared by its threads and health probes.

    ``fail`` keeps the first reason: later failures are usually consequences of it.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.fatal: str | None = None

    def stop(self) -> None:
        self.stopping.set()

    def fail(self, thread: str, exc: BaseException) -> None:
        """A part of the process cannot go on: report unhealthy, stop, exit non-zero."""
        self.fatal = self.fatal or f"{thread}: {type(exc).__name__}: {exc}"
        self.stopping.set()

    def alive(self) -> bool:
        return self.fatal is None
