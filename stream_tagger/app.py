"""Wiring: settings → engines, decoder, tagger, metrics, HTTP server, worker. Used by the CLI and the demo."""

from __future__ import annotations

import logging
import signal
import threading

from stream_tagger.decode import make_decoder
from stream_tagger.engines import EngineRepository, LoadedEngine
from stream_tagger.http import HealthServer
from stream_tagger.metrics import Metrics
from stream_tagger.settings import Settings
from stream_tagger.tagging import RetryPolicy, Tagger
from stream_tagger.uri_policy import UriPolicy
from stream_tagger.worker import Worker

log = logging.getLogger(__name__)


def build_tagger(settings: Settings, metrics: Metrics) -> Tagger:
    """Load the engines (highest versions) and build the tagger; engine_info follows every swap."""

    def show(new: LoadedEngine, old: LoadedEngine | None) -> None:
        previous = old.manifest.version if old is not None else None
        metrics.show_engine(new.name, new.manifest.version, new.runtime.backend, previous)

    repository = EngineRepository(settings.engine_dir, settings.backend, settings.ort_threads, on_change=show)
    repository.load()
    retry = RetryPolicy(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)
    decoder = make_decoder(settings.decoder, settings.decode_limits())
    return Tagger(repository, decoder, UriPolicy.from_settings(settings), retry, settings.worker_id)


def run_worker(
    settings: Settings,
    stop: threading.Event | None = None,
    install_signals: bool = True,
    metrics: Metrics | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); drain, commit, exit 0."""
    metrics = metrics or Metrics()
    tagger = build_tagger(settings, metrics)
    tagger.repository.start_watching(settings.reload_interval_s)
    worker = Worker(settings, tagger, metrics)
    server = HealthServer(metrics, worker.ready, settings.metrics_host, settings.metrics_port).start()
    log.info("http listening", extra={"port": server.port, "worker": settings.worker_id})
    if install_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    try:
        return worker.run()
    finally:
        server.stop()
        tagger.repository.close()
