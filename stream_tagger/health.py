"""The worker's HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (serving).

``/healthz`` fails once any part of the worker has failed for good (see ``supervision``); ``/readyz``
also fails while no partition is assigned or the worker is stopping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from stream_tagger.metrics import Metrics
from stream_tagger.supervision import OnFatal, start_supervised


class HealthServer:
    """Serves on a daemon thread; ``port`` 0 picks a free port (read it back from ``.port``)."""

    def __init__(
        self, metrics: Metrics, alive: Callable[[], bool], ready: Callable[[], bool], host: str, port: int
    ) -> None:
        handler = _make_handler(metrics, alive, ready)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._metrics = metrics
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self, on_fatal: OnFatal) -> HealthServer:
        self._thread = start_supervised("http", self._server.serve_forever, self._metrics, on_fatal)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(
    metrics: Metrics, alive: Callable[[], bool], ready: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                is_alive = alive()
                self._reply(200 if is_alive else 503, b"ok\n" if is_alive else b"failed\n")
            elif path == "/readyz":
                is_ready = ready()
                self._reply(200 if is_ready else 503, b"ready\n" if is_ready else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # scrapes every few seconds would flood the log
            return

    return Handler
