"""``http(s)://`` ranges: GET with ``Range`` over one keep-alive connection; redirects checked by the policy.

Every socket operation (connect, send, each read) gets the time left before the fetch's deadline as
its timeout, and bodies are read with ``read1`` (at most one socket read per call), so a server that
trickles a byte a second still hits the deadline. A body shorter than its ``Content-Range`` /
``Content-Length`` is a retryable ``fetch_failed``, never a shorter video. A server that answers a
Range request with 200 (the whole body) is read forward only as far as the decoder asks, keeping what
it sent so seeks back are served from it; the byte budget bounds how far that goes.
Redirects are followed here, not by urllib, so a redirect to ``file:`` or to a host that is not
allowed is ``uri_forbidden`` (an SSRF attempt), not a fetch failure.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from stream_tagger.errors import EventError, FetchFailed, FetchTimeout, TooLarge, UriForbidden
from stream_tagger.sources.stream import FetchBudget

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_TLS: ssl.SSLContext | None = None


def redacted(url: str) -> str:
    """``url`` without its query (presigned URLs carry credentials there) for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class HttpReader:
    def __init__(self, url: str, budget: FetchBudget, check_url: Callable[[str], None]) -> None:
        self._url = url
        self._budget = budget
        self._check_url = check_url
        self._conn: http.client.HTTPConnection | None = None
        self._origin: tuple[str, str | None, int | None] | None = None
        self._sock: socket.socket | None = None
        self._whole: _WholeBody | None = None
        self._size: int | None = None

    @property
    def size(self) -> int | None:
        return self._whole.size if self._whole is not None else self._size

    def read_range(self, start: int, end: int) -> bytes:
        try:
            if self._whole is not None:
                return self._whole.read_range(start, end)
            return self._ranged(start, end)
        except EventError:
            self._drop_connection()
            raise
        except Exception as exc:
            self._drop_connection()
            raise _as_event_error(exc, self._url) from exc

    def close(self) -> None:
        self._drop_connection()
        self._whole = None

    # ---- one ranged GET --------------------------------------------------------------------------
    def _ranged(self, start: int, end: int) -> bytes:
        response = self._get(f"bytes={start}-{end - 1}")
        if response.status == 206:
            first, last, total = _content_range(response.getheader("Content-Range"))
            if first != start or last < first:
                raise FetchFailed(f"asked for bytes {start}-{end - 1}, got {first}-{last}", retryable=True)
            self._size = total
            return _read_exact(response, last - first + 1, self._budget, self._sock)
        if response.status == 200:  # Range ignored: bounded streaming of the one body
            self._whole = _WholeBody(response, self._budget, self._sock)
            return self._whole.read_range(start, end)
        if response.status == 416:
            self._size = _unsatisfied_size(response.getheader("Content-Range"))
            if start < self._size:
                raise FetchFailed(f"HTTP 416 for bytes {start}- of a {self._size}-byte object", retryable=True)
            return b""
        retryable = response.status in (408, 425, 429) or response.status >= 500
        raise FetchFailed(f"HTTP {response.status} for {redacted(self._url)}", retryable=retryable)

    def _get(self, byte_range: str) -> http.client.HTTPResponse:
        url = self._url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(url, byte_range)
            if response.status not in REDIRECTS:
                self._url = url  # later ranges go straight to where the redirects led
                return response
            location = response.getheader("Location")
            self._drop_connection()
            if not location:
                raise FetchFailed(f"HTTP {response.status} without a Location", retryable=False)
            url = urljoin(url, location)
            self._check_url(url)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects from {redacted(self._url)}", retryable=False)

    def _send(self, url: str, byte_range: str, fresh: bool = False) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        conn = self._connection(parts)
        reused = conn.sock is not None and not fresh
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Range": byte_range, "Accept-Encoding": "identity", "User-Agent": "stream-tagger"}
        try:
            self._set_timeout(conn)
            conn.request("GET", target, headers=headers)
            self._sock = conn.sock  # kept: the response reads from it even after conn lets it go
            self._set_timeout(conn)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            self._drop_connection()  # a kept-alive connection the server closed meanwhile: one fresh try
            return self._send(url, byte_range, fresh=True)
        self._budget.requests += 1
        return response

    def _connection(self, parts) -> http.client.HTTPConnection:
        origin = (parts.scheme, parts.hostname, parts.port)
        if self._conn is None or self._origin != origin:
            self._drop_connection()
            if parts.scheme == "https":
                self._conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=_tls_context())
            else:
                self._conn = http.client.HTTPConnection(parts.hostname, parts.port)
            self._origin = origin
        return self._conn

    def _set_timeout(self, conn: http.client.HTTPConnection) -> None:
        conn.timeout = self._budget.seconds_left()  # used by connect (and the TLS handshake)
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._origin = self._sock = None


class _WholeBody:
    """A 200 answer to a Range request, read forward only as far as asked; what came is kept."""

    def __init__(self, response: http.client.HTTPResponse, budget: FetchBudget, sock) -> None:
        self._response = response
        self._budget = budget
        self._sock = sock
        self._data = bytearray()
        self._ended = False
        #: From Content-Length; unknown (chunked) until the body ends.
        self.size: int | None = response.length

    def read_range(self, start: int, end: int) -> bytes:
        target = end if self.size is None else min(end, self.size)
        while len(self._data) < target and not self._ended:
            want = min(_CHUNK, target - len(self._data), self._budget.bytes_left)
            if want <= 0:  # the budget is spent: only the end of a body of unknown length may come now
                if self.size is not None or self._body_goes_on():
                    raise TooLarge(f"the body goes on past max_fetch_bytes={self._budget.max_bytes}")
                self._end_of_body()
                break
            self._budget.take(want)  # refused before the bytes are read, so the limit holds on bytes read
            _set_socket_timeout(self._sock, self._budget)
            chunk = self._response.read1(want)
            self._budget.bytes_fetched -= want - len(chunk)
            if not chunk:
                self._end_of_body()
            self._data += chunk
        return bytes(self._data[start:end])

    def _body_goes_on(self) -> bool:
        _set_socket_timeout(self._sock, self._budget)
        return bool(self._response.read1(1))

    def _end_of_body(self) -> None:
        self._ended = True
        if self.size is None:
            self.size = len(self._data)
        elif len(self._data) < self.size:
            raise FetchFailed(f"short read: the body ended at {len(self._data)} of {self.size} bytes", retryable=True)


def _read_exact(response: http.client.HTTPResponse, length: int, budget: FetchBudget, sock) -> bytes:
    budget.take(length)
    data = bytearray()
    while len(data) < length:
        _set_socket_timeout(sock, budget)
        chunk = response.read1(min(_CHUNK, length - len(data)))
        if not chunk:
            raise FetchFailed(f"short read: {len(data)} of {length} bytes of a range", retryable=True)
        data += chunk
    response.close()  # the whole body is read: the connection may carry the next range
    return bytes(data)


def _set_socket_timeout(sock, budget: FetchBudget) -> None:
    if sock is not None:
        sock.settimeout(budget.seconds_left())


def _content_range(header: str | None) -> tuple[int, int, int]:
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if match is None or match.group(3) == "*":
        raise FetchFailed(f"206 without a usable Content-Range ({header!r})", retryable=False)
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _unsatisfied_size(header: str | None) -> int:
    match = _UNSATISFIED_RANGE.fullmatch((header or "").strip())
    return int(match.group(1)) if match else 0


def _tls_context() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:  # loading the CA bundle costs milliseconds: once per process
        _TLS = ssl.create_default_context()
    return _TLS


def _as_event_error(exc: Exception, url: str) -> EventError:
    """Every failure of the HTTP exchange as the EventError with its DLQ code."""
    where = redacted(url)
    if isinstance(exc, TimeoutError):  # socket.timeout: the deadline ran out inside a socket call
        return FetchTimeout(f"reading {where} took longer than the fetch deadline")
    if isinstance(exc, http.client.InvalidURL):
        return UriForbidden(f"invalid URL {where}: {exc}")
    if isinstance(exc, (http.client.HTTPException, OSError)):  # IncompleteRead, BadStatusLine, resets, TLS
        return FetchFailed(f"fetching {where} failed: {type(exc).__name__}: {exc}", retryable=True)
    return FetchFailed(f"fetching {where} failed: {type(exc).__name__}: {exc}", retryable=False)
