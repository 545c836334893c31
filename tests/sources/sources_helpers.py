"""Shared by the sources tests: the uploads' names, a policy over the test servers, tagging one URI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream_tagger.records import InputEvent, StageTimes
from stream_tagger.sources.objects import ObjectStores
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.tagger import Tagger
from stream_tagger.testing.servers import S3Server

MB = 1_000_000
BUCKET = "uploads"
#: A file this large is "a file over 1 GB" (sparse: its padding costs no disk).
BIG_BYTES = 1_100_000_000


@dataclass(frozen=True)
class Uploads:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name


def make_policy(upload_files: Uploads, hosts=("127.0.0.1",), max_bytes: int = 64 * MB, timeout_s: float = 10.0,
                s3: S3Server | None = None, buckets: dict[str, frozenset[str]] | None = None,
                streams: list | None = None, readahead: int = 256 * 1024) -> UriPolicy:
    """A policy over the test uploads; every stream it opens is appended to ``streams`` as it closes."""
    stores = ObjectStores({"s3": s3.url if s3 else None}, timeout_s)
    return UriPolicy((upload_files.root,), frozenset(hosts), max_bytes, timeout_s,
                     buckets if buckets is not None else {"s3": frozenset({BUCKET})}, readahead, stores,
                     on_close=streams.append if streams is not None else None)


def tag(tagger: Tagger, uri: str) -> dict:
    """The tag record of one URI (fetch, decode, infer)."""
    prepared = tagger.prepare(InputEvent(video_id="v", uri=uri, title="t"), None, StageTimes())
    return tagger.infer([prepared])[0]
