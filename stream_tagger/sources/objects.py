"""``s3://`` and ``gs://`` ranges through fsspec (s3fs, gcsfs: the ``s3`` / ``gcs`` extras).

Credentials come only from each provider's standard chain (environment, config files, IRSA web
identity, GKE workload identity, instance metadata), never from an event; the only knobs are the
endpoint overrides for S3-compatible stores and emulators. Each call gets the time left before the
fetch's deadline (fsspec cancels it past that), and the stores' own retries are off: retrying is the
event's RetryPolicy's job, so one event never retries N×M times.
"""

from __future__ import annotations

import threading
from typing import Any

from stream_tagger.errors import ConfigError, EventError, FetchFailed, FetchTimeout
from stream_tagger.sources.stream import FetchBudget

#: The fsspec protocol name and the extra that installs it, per URI scheme.
BACKENDS = {"s3": ("s3", "s3"), "gs": ("gcs", "gcs")}


class ObjectStores:
    """One fsspec filesystem per scheme, built on first use with the configured endpoint and timeouts."""

    def __init__(self, endpoints: dict[str, str | None] | None = None, timeout_s: float = 10.0) -> None:
        self._endpoints = endpoints or {}
        self._timeout_s = timeout_s
        self._filesystems: dict[str, Any] = {}
        self._lock = threading.Lock()

    def check_installed(self, scheme: str) -> None:
        """ConfigError at start-up when buckets are allowed for a scheme whose extra is missing."""
        self.filesystem(scheme)

    def filesystem(self, scheme: str) -> Any:
        with self._lock:
            if scheme not in self._filesystems:
                self._filesystems[scheme] = self._build(scheme)
            return self._filesystems[scheme]

    def _build(self, scheme: str) -> Any:
        protocol, extra = BACKENDS[scheme]
        try:
            import fsspec

            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            raise ConfigError(f"{scheme}:// needs the {extra} extra (pip install 'stream-tagger[{extra}]')") from exc
        endpoint = self._endpoints.get(scheme)
        if scheme == "s3":
            config = {"connect_timeout": self._timeout_s, "read_timeout": self._timeout_s,
                      "retries": {"max_attempts": 1}}
            fs = fsspec.filesystem("s3", skip_instance_cache=True, config_kwargs=config,
                                   client_kwargs={"endpoint_url": endpoint} if endpoint else {})
        else:
            fs = fsspec.filesystem("gcs", skip_instance_cache=True, requests_timeout=self._timeout_s,
                                   **({"endpoint_url": endpoint} if endpoint else {}))
        fs.retries = 1  # one attempt per call (see the module docstring)
        return fs


class ObjectReader:
    """Ranged GETs of one object (one metadata request first, for the size)."""

    def __init__(self, fs: Any, path: str, budget: FetchBudget) -> None:
        self._fs = fs
        self._path = path
        self._budget = budget
        self.size: int | None = None

    def read_range(self, start: int, end: int) -> bytes:
        if self.size is None:
            self.size = int(self._call(self._fs.size, self._path))
        end = min(end, self.size)
        if start >= end:
            return b""
        self._budget.take(end - start)
        self._budget.requests += 1
        data = self._call(self._fs.cat_file, self._path, start=start, end=end)
        if len(data) != end - start:
            raise FetchFailed(f"short read: {len(data)} of {end - start} bytes of a range", retryable=True)
        return data

    def close(self) -> None:
        """Connections belong to the shared filesystem's pool."""

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, timeout=self._budget.seconds_left(), **kwargs)
        except EventError:
            raise
        except TimeoutError as exc:  # fsspec's FSTimeoutError is an asyncio (= builtin) TimeoutError
            raise FetchTimeout(f"reading {self._path} took longer than {self._budget.what}") from exc
        except FileNotFoundError as exc:
            raise FetchFailed(f"no such object: {self._path}", retryable=False) from exc
        except PermissionError as exc:
            raise FetchFailed(f"access denied to {self._path}: {exc}", retryable=False) from exc
        except Exception as exc:  # botocore/aiohttp/google errors: the store's boundary, wrapped with its type
            raise FetchFailed(f"reading {self._path} failed: {type(exc).__name__}: {exc}", retryable=True) from exc
