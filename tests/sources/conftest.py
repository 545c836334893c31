"""Fixtures of the sources tests: uploads shaped like a platform's, a real loopback HTTP server with
Range (and fault modes), a real S3 API (moto server, its own process), and a tagger over tiny engines.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from sources_helpers import BIG_BYTES, BUCKET, Uploads

from stream_tagger.decode import make_decoder
from stream_tagger.engines.repository import EngineRepository
from stream_tagger.engines.tiny import write_tiny_repository
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy
from stream_tagger.tagger import Tagger
from stream_tagger.testing import uploads
from stream_tagger.testing.servers import FileServer, S3Server


@pytest.fixture(scope="session")
def upload_files(tmp_path_factory: pytest.TempPathFactory) -> Uploads:
    """10-second and 2-hour uploads (64x64, 30 fps), faststart and moov-at-end, and two 1.1 GB ones (~4 s)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("the uploads need Debian's ffmpeg (apt-get install ffmpeg)")
    root = tmp_path_factory.mktemp("uploads")
    for faststart, suffix in ((True, ""), (False, "_end")):
        clip = uploads.encode_clip(root / f"ten_seconds{suffix}.mp4", seconds=10, faststart=faststart)
        uploads.loop_clip(clip, root / f"two_hours{suffix}.mp4", 7200, faststart=faststart)
        uploads.pad_after_packets(clip, root / f"big{suffix}.mp4", BIG_BYTES)
    (root / "not_a_video.mp4").write_bytes(b"hello" * 1000)
    return Uploads(root)


@pytest.fixture
def http_files(upload_files: Uploads) -> Iterator[FileServer]:
    with FileServer(upload_files.root, hold_s=30.0, trickle_interval_s=0.2) as server:
        yield server


@pytest.fixture(scope="session")
def s3_store(upload_files: Uploads, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 in its own process with bucket ``uploads`` holding the 10-second and 2-hour files."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with S3Server(log_path=log) as server:
        names = ["ten_seconds.mp4", "ten_seconds_end.mp4", "two_hours.mp4", "two_hours_end.mp4"]
        server.upload(BUCKET, {name: upload_files.path(name) for name in names})
        with pytest.MonkeyPatch.context() as patch:  # the standard provider chain reads the environment
            for key, value in S3Server.CREDENTIALS.items():
                patch.setenv(key, value)
            yield server


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_repository(tmp_path_factory.mktemp("engines"))


@pytest.fixture
def tagger_for(engine_dir: Path) -> Iterator[Callable[[UriPolicy], Tagger]]:
    """``tagger_for(policy)``: a Tagger over tiny engines reading through ``policy`` (3 attempts, no backoff)."""
    repositories: list[EngineRepository] = []

    def build(policy: UriPolicy, attempts: int = 3) -> Tagger:
        repository = EngineRepository(engine_dir, "onnxruntime", threads=1)
        repository.load()
        repositories.append(repository)
        return Tagger(repository, make_decoder("pyav"), policy, RetryPolicy(attempts, 0.0, 0.0), "sources-test")

    yield build
    for repository in repositories:
        repository.close()


@pytest.fixture(scope="session")
def validate_tag_record() -> Callable[[dict], None]:
    schema = json.loads(resources.files("stream_tagger.schemas").joinpath("tag_record.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate
