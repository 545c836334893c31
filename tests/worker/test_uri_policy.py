"""file:// only under the roots (after resolving links and ..), http(s) only to allowed hosts.

Every source opens as a byte stream; max_bytes bounds the bytes read, not the file's size.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from stream_tagger.errors import FetchFailed, TooLarge, UriForbidden
from stream_tagger.sources.policy import UriPolicy


@pytest.fixture
def media(tmp_path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    (root / "ok.mp4").write_bytes(b"v" * 100)
    (tmp_path / "secret.txt").write_text("no")
    (root / "link.mp4").symlink_to(tmp_path / "secret.txt")
    return root


def policy(root: Path, hosts=(), max_bytes: int = 10_000) -> UriPolicy:
    return UriPolicy((root.resolve(),), frozenset(hosts), max_bytes, 5.0)


def test_file_under_the_root_opens_as_a_stream_of_its_bytes(media):
    with policy(media).open((media / "ok.mp4").as_uri()) as stream:
        assert stream.read() == b"v" * 100
        assert stream.bytes_fetched == 100


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file://{root}/../secret.txt",
        "file://{root}/link.mp4",
        "file://evil.example/{root}/ok.mp4",
        "ftp://host/x.mp4",
        "concat:{root}/ok.mp4",
        "data:video/mp4;base64,AAAA",
        "{root}/ok.mp4",
        "http://not-allowed.example/x.mp4",
    ],
)
def test_everything_else_is_forbidden(media, uri):
    with pytest.raises(UriForbidden):
        policy(media).open(uri.format(root=media))


def test_missing_file_under_the_root_is_a_fetch_failure(media):
    with pytest.raises(FetchFailed):
        policy(media).open((media / "absent.mp4").as_uri())


def test_reading_a_file_past_the_byte_limit_is_too_large(media):
    # Given a 100-byte file and a 10-byte limit: opening reads only what fits
    with policy(media, max_bytes=10).open((media / "ok.mp4").as_uri()) as stream:
        assert stream.read(10) == b"v" * 10
        # Then the first byte past the limit is refused
        with pytest.raises(TooLarge):
            stream.read(1)


@pytest.fixture
def http_server(media):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(media), **k)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_to_an_allowed_host_downloads_within_the_limit(media, http_server):
    with policy(media, hosts=["127.0.0.1"]).open(f"{http_server}/ok.mp4") as source:
        assert source.read() == b"v" * 100


def test_http_download_over_the_limit_is_too_large(media, http_server):
    with pytest.raises(TooLarge), policy(media, hosts=["127.0.0.1"], max_bytes=50).open(f"{http_server}/ok.mp4") as s:
        s.read()


def test_http_404_is_a_non_retryable_fetch_failure(media, http_server):
    with pytest.raises(FetchFailed) as caught:
        policy(media, hosts=["127.0.0.1"]).open(f"{http_server}/absent.mp4")
    assert not caught.value.retryable
