"""Which URIs the worker may open: ``file://`` under configured roots, ``http(s)://`` to configured hosts.

Everything else raises UriForbidden. Downloads go through urllib (no shell), bounded in bytes and time;
redirects are re-checked against the host list.
"""

from __future__ import annotations

import io
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stream_tagger.decode import Source
from stream_tagger.errors import FetchFailed, TooLarge, UriForbidden

_CHUNK = 1 << 16


@dataclass(frozen=True)
class UriPolicy:
    roots: tuple[Path, ...]
    hosts: frozenset[str]
    max_bytes: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings) -> "UriPolicy":
        return cls(
            tuple(Path(root).resolve() for root in settings.uri_roots),
            frozenset(host.lower() for host in settings.uri_hosts),
            settings.max_fetch_bytes,
            settings.fetch_timeout_s,
        )

    def open(self, uri: str) -> Source:
        """A path (file) or an in-memory file (downloaded) that the decoder can read."""
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return str(self.local_path(uri))
        if scheme in ("http", "https"):
            self.check_host(parts.hostname)
            return self._download(uri)
        raise UriForbidden(f"scheme {scheme or '(none)'!r} is not allowed")

    def local_path(self, uri: str) -> Path:
        """The resolved file behind a ``file://`` URI, refused unless it lies under a root."""
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UriForbidden(f"file URI with a host ({parts.netloc!r}) is not allowed")
        path = Path(unquote(parts.path)).resolve()  # follows symlinks and '..' before the root check
        if not any(path.is_relative_to(root) for root in self.roots):
            raise UriForbidden(f"{path} is outside the allowed roots")
        if not path.is_file():
            raise FetchFailed(f"no such file: {path}")
        if path.stat().st_size > self.max_bytes:
            raise TooLarge(f"{path} is larger than max_fetch_bytes={self.max_bytes}")
        return path

    def check_host(self, host: str | None) -> None:
        if not host or host.lower() not in self.hosts:
            raise UriForbidden(f"host {host!r} is not in the allowed hosts")

    def _download(self, uri: str) -> io.BytesIO:
        opener = urllib.request.build_opener(_CheckedRedirects(self))
        try:
            with opener.open(uri, timeout=self.timeout_s) as response:
                return io.BytesIO(self._read_bounded(response))
        except urllib.error.HTTPError as exc:
            raise FetchFailed(f"HTTP {exc.code} for {uri}", retryable=exc.code >= 500) from exc
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            raise FetchFailed(f"fetching {uri} failed: {exc}", retryable=True) from exc

    def _read_bounded(self, response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise TooLarge(f"declared size {declared} exceeds max_fetch_bytes={self.max_bytes}")
        buffer = bytearray()
        while chunk := response.read(_CHUNK):
            buffer += chunk
            if len(buffer) > self.max_bytes:
                raise TooLarge(f"download exceeds max_fetch_bytes={self.max_bytes}")
        return bytes(buffer)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an allowed host over http(s)."""

    def __init__(self, policy: UriPolicy) -> None:
        self._policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        parts = urlsplit(newurl)
        if parts.scheme.lower() not in ("http", "https"):
            raise UriForbidden(f"redirect to scheme {parts.scheme!r} is not allowed")
        self._policy.check_host(parts.hostname)
        return super().redirect_request(req, fp, code, msg, headers, newurl)
