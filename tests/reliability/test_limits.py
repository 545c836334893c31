"""Each resource limit is a setting and fires with its DLQ code, through the worker's own code paths.

Max pixels and max message size are covered in test_bad_inputs.py (huge declared resolution,
10 MB message); this file covers max bytes fetched (file:// and http://: the bytes read, not the
file's size) and the decode timeout.
"""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.errors import DecodeTimeout, EventError, TooLarge
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.settings import Settings
from stream_tagger.sources.policy import UriPolicy

LIMIT_BYTES = 1000
POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


def _policy(tmp_path, **overrides) -> UriPolicy:
    fields = {"uri_roots": [str(tmp_path)], "uri_hosts": ["127.0.0.1"], "max_fetch_bytes": LIMIT_BYTES} | overrides
    return UriPolicy.from_settings(Settings(**fields))


def test_reading_a_file_past_max_fetch_bytes_is_too_large(tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (LIMIT_BYTES + 1))
    with pytest.raises(TooLarge) as caught, _policy(tmp_path).open(big.as_uri()) as stream:
        stream.read()
    assert caught.value.code == "too_large"


def test_file_within_max_fetch_bytes_is_read_whole(tmp_path):
    small = tmp_path / "small.mp4"
    small.write_bytes(b"\0" * LIMIT_BYTES)
    with _policy(tmp_path).open(small.as_uri()) as stream:
        assert stream.read() == b"\0" * LIMIT_BYTES


class _BigBody(http.server.BaseHTTPRequestHandler):
    """Streams a body over the limit without Content-Length, so only the bounded read can stop it."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\0" * (LIMIT_BYTES * 100))

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _BigBody)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_download_bigger_than_max_fetch_bytes_is_too_large(tmp_path, http_server):
    with pytest.raises(TooLarge) as caught, _policy(tmp_path).open(f"{http_server}/big.mp4") as stream:
        stream.read()
    assert caught.value.code == "too_large"


def test_http_download_within_max_fetch_bytes_is_read(tmp_path, http_server):
    with _policy(tmp_path, max_fetch_bytes=LIMIT_BYTES * 100).open(f"{http_server}/big.mp4") as body:
        assert len(body.read()) == LIMIT_BYTES * 100


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory):
    clip = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=4",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=30)
    return clip


def test_tiny_decode_timeout_fires_with_code_timeout(real_clip):
    limits = Settings(decode_timeout_s=1e-6).decode_limits()
    try:
        make_decoder("pyav", limits).decode(str(real_clip), [POLICY])
    except EventError as error:
        assert error.code == DecodeTimeout.code, f"got {error.code}: {error}"
    else:
        pytest.fail("decoding with a 1 µs timeout succeeded")


def test_default_decode_timeout_decodes_the_same_clip(real_clip):
    clip = make_decoder("pyav", Settings().decode_limits()).decode(str(real_clip), [POLICY])
    assert clip.frames[POLICY].shape == (8, 64, 64, 3)
