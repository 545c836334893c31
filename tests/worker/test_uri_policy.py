"""file:// only under the roots (after resolving links and ..), http(s) only to allowed hosts."""

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


def test_file_under_the_root_opens(media):
    assert policy(media).open((media / "ok.mp4").as_uri()) == str((media / "ok.mp4").resolve())


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


def test_file_over_the_byte_limit_is_too_large(media):
    with pytest.raises(TooLarge):
        policy(media, max_bytes=10).open((media / "ok.mp4").as_uri())


@pytest.fixture
def http_server(media):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(media), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_to_an_allowed_host_downloads_within_the_limit(media, http_server):
    source = policy(media, hosts=["127.0.0.1"]).open(f"{http_server}/ok.mp4")
    assert source.read() == b"v" * 100


def test_http_download_over_the_limit_is_too_large(media, http_server):
    with pytest.raises(TooLarge):
        policy(media, hosts=["127.0.0.1"], max_bytes=50).open(f"{http_server}/ok.mp4")


def test_http_404_is_a_non_retryable_fetch_failure(media, http_server):
    with pytest.raises(FetchFailed) as caught:
        policy(media, hosts=["127.0.0.1"]).open(f"{http_server}/absent.mp4")
    assert not caught.value.retryable
