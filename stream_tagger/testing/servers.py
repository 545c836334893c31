"""Real loopback servers for tests and benchmarks: an HTTP file server with Range and fault modes, and
an S3 API (moto in server mode, its own process).

HTTP paths are ``/<mode>/<file under root>``:

- ``ranged``   honours ``Range`` (206), keep-alive (HTTP/1.1);
- ``norange``  ignores ``Range``: always 200 with the whole body;
- ``stall``    sends the headers, then nothing;
- ``mute``     accepts the connection and never answers;
- ``trickle``  honours ``Range`` but sends one byte every ``trickle_interval_s``;
- ``truncate`` honours ``Range``, declares the full length, and drops the connection halfway;
- ``garbage``  answers with a status line that is not HTTP;
- ``redirect`` ``/redirect/?to=<url>`` answers 302 to ``url`` (any scheme: the client must refuse).

Every sleep is bounded (``hold_s``) so a test that forgets a server still ends. The server counts the
body bytes it sent and the requests per mode, so a test checks the client's own count against it.

    python -m stream_tagger.testing.servers ROOT [--port N]     # the HTTP server alone (benchmarks)
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

from stream_tagger.testing.broker import free_port

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1 << 16


class FileServer(http.server.ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1 (a free port) from a daemon thread; ``with FileServer(root) as s``."""

    daemon_threads = True

    def __init__(self, root: Path, port: int = 0, hold_s: float = 60.0, trickle_interval_s: float = 0.5) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = Path(root).resolve()
        self.hold_s = hold_s
        self.trickle_interval_s = trickle_interval_s
        self.bytes_sent = 0
        self.requests: Counter[str] = Counter()
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """A client that closed its kept-alive connection is normal here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def note_request(self, mode: str) -> None:
        with self._lock:
            self.requests[mode] += 1

    def note_sent(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count

    def __enter__(self) -> Self:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        mode, _, name = urlsplit(self.path).path.lstrip("/").partition("/")
        self.server.note_request(mode)
        try:
            if mode == "redirect":
                return self._redirect()
            if mode == "mute":
                self.server.stopping.wait(self.server.hold_s)
                self.close_connection = True
                return
            if mode == "garbage":
                self.wfile.write(b"NOT-HTTP 200 whatever\r\n\r\n")
                self.close_connection = True
                return
            self._serve(mode, name)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is its right
            self.close_connection = True

    def _redirect(self) -> None:
        target = parse_qs(urlsplit(self.path).query).get("to", [""])[0]
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, mode: str, name: str) -> None:
        path = (self.server.root / unquote(name)).resolve()
        if mode not in ("ranged", "norange", "stall", "trickle", "truncate") or not path.is_file() \
                or not path.is_relative_to(self.server.root):
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end = _requested(self.headers.get("Range"), size) if mode != "norange" else (0, size)
        if start >= size and size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ranged = mode != "norange" and self.headers.get("Range") is not None
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes" if mode != "norange" else "none")
        self.end_headers()
        self.wfile.flush()
        self._body(mode, path, start, end)

    def _body(self, mode: str, path: Path, start: int, end: int) -> None:
        if mode == "stall":
            self.server.stopping.wait(self.server.hold_s)
            self.close_connection = True
            return
        if mode == "truncate":
            end = start + (end - start) // 2
            self.close_connection = True
        with open(path, "rb") as file:
            file.seek(start)
            if mode == "trickle":
                return self._trickle(file, end - start)
            left = end - start
            while left > 0 and (chunk := file.read(min(_CHUNK, left))):
                self.wfile.write(chunk)
                self.server.note_sent(len(chunk))
                left -= len(chunk)

    def _trickle(self, file, length: int) -> None:
        deadline = time.monotonic() + self.server.hold_s
        for _ in range(length):
            if time.monotonic() > deadline or self.server.stopping.wait(self.server.trickle_interval_s):
                break
            self.wfile.write(file.read(1))
            self.wfile.flush()
            self.server.note_sent(1)
        self.close_connection = True


def _requested(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) of a single ``bytes=a-b`` range (the whole file when absent or unparsable)."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or match.group(1) == "":
        return 0, size
    start = int(match.group(1))
    end = min(size, int(match.group(2)) + 1) if match.group(2) else size
    return start, max(start, end)


class S3Server:
    """moto's S3 API in its own process on a free loopback port; credentials are moto's fakes, given
    through the environment (the standard provider chain), never in a URI."""

    CREDENTIALS: ClassVar[dict[str, str]] = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                             "AWS_DEFAULT_REGION": "us-east-1"}

    def __init__(self, log_path: Path | None = None, start_timeout_s: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    def env(self) -> dict[str, str]:
        """What a worker or client needs to reach this store (add to os.environ)."""
        return {**self.CREDENTIALS, "STREAM_TAGGER_S3_ENDPOINT_URL": self.url}

    def start(self) -> Self:
        with open(self._log_path or os.devnull, "ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.CREDENTIALS},
            )
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {self._start_timeout_s}s")

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def upload(self, bucket: str, files: dict[str, Path]) -> None:
        client = self.client()
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)
        for key, path in files.items():
            client.upload_file(str(path), bucket, key)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream_tagger.testing.servers", description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = FileServer(args.root, args.port)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

