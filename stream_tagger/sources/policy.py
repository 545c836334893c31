"""Which URIs the worker may open, and the byte stream it reads each one through.

- ``file://`` under the configured roots (after resolving links and ``..``);
- ``http(s)://`` to the configured hosts, redirects included;
- ``s3://`` / ``gs://`` to the configured buckets per scheme.

Everything else, and any URI that cannot be parsed safely (NUL or control characters, a bad port, a
path the OS cannot name), raises UriForbidden. Every source opens as a RangeStream: bytes are read on
demand, and ``max_fetch_bytes`` and ``fetch_timeout_s`` bound what one fetch reads, not the file's size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stream_tagger.errors import FetchFailed, UriForbidden
from stream_tagger.sources.http import HttpReader
from stream_tagger.sources.local import LocalReader
from stream_tagger.sources.objects import BACKENDS, ObjectReader, ObjectStores
from stream_tagger.sources.stream import FetchBudget, RangeReader, RangeStream

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
#: Local reads need no read-ahead (the page cache has it); network reads get ``readahead_bytes``.
_LOCAL_READAHEAD = 0


@dataclass(frozen=True)
class UriPolicy:
    roots: tuple[Path, ...]
    hosts: frozenset[str]
    max_bytes: int
    timeout_s: float
    #: Allowed buckets per object-store scheme (``s3``, ``gs``).
    buckets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    readahead_bytes: int = 256 * 1024
    stores: ObjectStores = field(default_factory=ObjectStores)
    #: Called once per stream as it closes (metrics: bytes fetched, range requests).
    on_close: Callable[[RangeStream], None] | None = None

    @classmethod
    def from_settings(cls, settings, on_close: Callable[[RangeStream], None] | None = None) -> UriPolicy:
        buckets = {scheme: frozenset(names) for scheme, names in settings.uri_buckets.items() if names}
        stores = ObjectStores({"s3": settings.s3_endpoint_url, "gs": settings.gcs_endpoint_url},
                              settings.fetch_timeout_s)
        for scheme in buckets:
            stores.check_installed(scheme)
        return cls(
            tuple(Path(root).resolve() for root in settings.uri_roots),
            frozenset(host.lower() for host in settings.uri_hosts),
            settings.max_fetch_bytes,
            settings.fetch_timeout_s,
            buckets,
            settings.fetch_readahead_bytes,
            stores,
            on_close,
        )

    def open(self, uri: str) -> RangeStream:
        """A stream over ``uri`` whose first block is already read (refusals and errors come here)."""
        if _CONTROL.search(uri):
            raise UriForbidden("the URI holds NUL or control characters")
        scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
        budget = FetchBudget.starting_now(self.max_bytes, self.timeout_s)
        if scheme == "file":
            return self._stream(LocalReader(self.local_path(uri), budget), budget, "file", _LOCAL_READAHEAD)
        if scheme in ("http", "https"):
            self.check_http_url(uri)
            return self._stream(HttpReader(uri, budget, self.check_http_url), budget, scheme, self.readahead_bytes)
        if scheme in BACKENDS:
            path = self.object_path(uri)
            fs = self.stores.filesystem(scheme)
            return self._stream(ObjectReader(fs, path, budget), budget, scheme, self.readahead_bytes)
        raise UriForbidden(f"scheme {scheme or '(none)'!r} is not allowed")

    def open_path(self, path: Path) -> RangeStream:
        """A local file named on the command line by its operator: no root check, the same limits."""
        budget = FetchBudget.starting_now(self.max_bytes, self.timeout_s)
        return self._stream(LocalReader(_checked_file(Path(path).absolute()), budget), budget, "file", 0)

    def local_path(self, uri: str) -> Path:
        """The resolved file behind a ``file://`` URI, refused unless it lies under a root."""
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UriForbidden(f"file URI with a host ({parts.netloc!r}) is not allowed")
        try:  # resolve() follows symlinks and '..' before the root check
            name = unquote(parts.path, errors="strict")
            if _CONTROL.search(name):
                raise UriForbidden("the file path holds NUL or control characters")
            path = Path(name).resolve()
        except (ValueError, UnicodeError, OSError) as exc:
            raise UriForbidden(f"not a usable file path: {type(exc).__name__}") from exc
        if not any(path.is_relative_to(root) for root in self.roots):
            raise UriForbidden(f"{path} is outside the allowed roots")
        return _checked_file(path)

    def check_http_url(self, url: str) -> None:
        """Refuse (UriForbidden) a URL that is not http(s) to an allowed host: the event's and every redirect's."""
        try:
            parts = urlsplit(url)
            host, _port = parts.hostname, parts.port  # .port raises ValueError for a bad port
        except ValueError as exc:
            raise UriForbidden(f"not a valid URL: {exc}") from exc
        if parts.scheme.lower() not in ("http", "https"):
            raise UriForbidden(f"redirect to scheme {parts.scheme!r} is not allowed")
        if _CONTROL.search(url) or " " in url:
            raise UriForbidden("the URL holds control characters or spaces")
        self.check_host(host)

    def check_host(self, host: str | None) -> None:
        if not host or host.lower() not in self.hosts:
            raise UriForbidden(f"host {host!r} is not in the allowed hosts")

    def object_path(self, uri: str) -> str:
        """``bucket/key`` of an ``s3://`` or ``gs://`` URI, refused unless the bucket is allowed."""
        scheme, rest = uri.split("://", 1) if "://" in uri else (uri.split(":", 1)[0], "")
        bucket, _, key = rest.partition("/")
        if not _BUCKET.fullmatch(bucket) or not key:
            raise UriForbidden(f"not a {scheme}://bucket/key URI")
        if bucket not in self.buckets.get(scheme.lower(), frozenset()):
            raise UriForbidden(f"bucket {bucket!r} is not in the allowed {scheme} buckets")
        return f"{bucket}/{key}"

    def _stream(self, reader: RangeReader, budget: FetchBudget, scheme: str, readahead: int) -> RangeStream:
        stream = RangeStream(reader, budget, readahead, on_close=self.on_close, scheme=scheme)
        try:
            stream.prime()
        except BaseException:
            stream.close()
            raise
        return stream


def _checked_file(path: Path) -> Path:
    try:
        if path.is_file():
            return path
    except (ValueError, OSError) as exc:
        raise UriForbidden(f"not a usable file path: {type(exc).__name__}") from exc
    raise FetchFailed(f"no such file: {path}")
