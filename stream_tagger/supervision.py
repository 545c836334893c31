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
            log.critical("thread failed", exc_info=True, extra={"thread": name, "error": repr(exc)[:500]})
            metrics.thread_failures.labels(thread=name).inc()
            on_fatal(name, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
