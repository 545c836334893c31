"""Bytes fetched and fetch→tag latency: range reads against today's whole-file fetch, in one run.

Uploads of 10 s, 10 min and 2 h (320x180, 30 fps, 200 kbit/s H.264; the long ones loop a 10 s clip by
stream copy, so they carry every sample a real one would), each faststart and moov-at-end, served by
a loopback HTTP server with Range and by moto's S3 API, each in its own process. Per upload,
transport and method, the same Tagger (the newest engines) fetches, decodes and infers one event:

- ``range``: the worker's path (``UriPolicy`` → ``RangeStream`` → PyAV);
- ``whole``: the previous path, the whole object read into memory first (urllib / one S3 GET), then
  decoded from a BytesIO.

Latency is from the start of the fetch to the tag record (Kafka's own hops are not in it: see the
worker benchmarks). moto reads a whole object from its store for every GET, so its per-request cost
grows with the object's size; that inflates S3's range figures for large uploads, never its bytes.

    python -m bench --only sources            # or: python -m bench.range_reads --repetitions 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import machine
from bench.stats import summarise
from bench.videos import CACHE_DIR
from stream_tagger.metrics import Metrics
from stream_tagger.records import InputEvent, StageTimes
from stream_tagger.settings import Settings
from stream_tagger.tagger import Tagger
from stream_tagger.testing import uploads
from stream_tagger.testing.broker import free_port
from stream_tagger.testing.servers import S3Server

UPLOADS_DIR = CACHE_DIR / "uploads"
LENGTHS = {"10s": 10, "10min": 600, "2h": 7200}
BUCKET = "bench-uploads"
RESULTS = Path(__file__).resolve().parent / "results"


def build_uploads(folder: Path = UPLOADS_DIR) -> dict[str, Path]:
    """name → file for every length × layout (cached: built once, ~20 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for faststart, layout in ((True, "faststart"), (False, "moov_at_end")):
        clip = folder / f"clip_{layout}.mp4"
        if not clip.exists():
            uploads.encode_clip(clip, seconds=10, size="320x180", faststart=faststart, source="testsrc2",
                                bitrate="200k")
        for length, seconds in LENGTHS.items():
            out = folder / f"{length}_{layout}.mp4"
            if not out.exists():
                uploads.loop_clip(clip, out, seconds, faststart=faststart)
            files[f"{length}_{layout}"] = out
    return files


def measure(repetitions: int = 3, engines_dir: Path | None = None) -> dict:
    files = build_uploads()
    log_dir = CACHE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with S3Server(log_path=log_dir / "moto-bench.log") as s3, _http_server(files) as http_url:
        s3.upload(BUCKET, {f.name: f for f in files.values()})
        for key, value in S3Server.CREDENTIALS.items():  # fsspec finds them as any provider chain would
            os.environ.setdefault(key, value)
        tagger = _tagger(files, s3.url, engines_dir)
        try:
            first = next(iter(files.values())).name  # warm-up, untimed: first inference, S3 client set-up
            for uri in (f"{http_url}/ranged/{first}", f"s3://{BUCKET}/{first}"):
                _once(tagger, uri, "", "range", s3)
            rows = [_row(tagger, name, path, transport, http_url, s3, repetitions)
                    for name, path in files.items() for transport in ("http", "s3")]
        finally:
            tagger.close()
    return {"rows": rows, "load_average_at_end": machine.load_average(),
            "uploads": {name: path.stat().st_size for name, path in files.items()}}


def _row(tagger: Tagger, name: str, path: Path, transport: str, http_url: str, s3: S3Server, repetitions: int):
    uri = f"{http_url}/ranged/{path.name}" if transport == "http" else f"s3://{BUCKET}/{path.name}"
    row = {"upload": name, "transport": transport, "bytes": path.stat().st_size}
    for method in ("range", "whole"):
        runs = [_once(tagger, uri, transport, method, s3) for _ in range(repetitions)]
        row[method] = {
            "bytes_fetched": runs[-1]["bytes_fetched"],
            "latency_ms": summarise([r["ms"] for r in runs], digits=1),
            "outcome": runs[-1]["outcome"],
        }
    print(f"[sources] {name:22s} {transport:4s} range {row['range']['bytes_fetched']:>11,} B "
          f"{row['range']['latency_ms']['median']:>8.1f} ms | whole {row['whole']['bytes_fetched']:>11,} B "
          f"{row['whole']['latency_ms']['median']:>8.1f} ms", file=sys.stderr, flush=True)
    return row


def _once(tagger: Tagger, uri: str, transport: str, method: str, s3: S3Server) -> dict:
    event = InputEvent(video_id="bench", uri=uri, title="bench")
    started = time.perf_counter()
    try:
        if method == "range":
            prepared = tagger.prepare(event, None, StageTimes())
            fetched = prepared.clip.bytes_fetched
        else:
            body = _whole(uri, transport, s3)
            prepared = tagger.prepare(event, None, StageTimes(), source=io.BytesIO(body))
            fetched = len(body)
        record = tagger.infer([prepared])[0]
        outcome = "tag" if record else "none"
    except Exception as exc:  # noqa: BLE001 - a failed fetch is a figure too, never the end of the run
        return {"ms": (time.perf_counter() - started) * 1000, "bytes_fetched": None, "outcome": repr(exc)[:200]}
    return {"ms": (time.perf_counter() - started) * 1000, "bytes_fetched": fetched, "outcome": outcome}


def _whole(uri: str, transport: str, s3: S3Server) -> bytes:
    """Today's (before range reads) fetch: the whole object in memory."""
    if transport == "http":
        with urllib.request.urlopen(uri, timeout=120) as response:
            return response.read()
    key = uri.removeprefix(f"s3://{BUCKET}/")
    return s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _tagger(files: dict[str, Path], s3_url: str, engines_dir: Path | None) -> Tagger:
    from bench.engines import ENGINES_DIR

    settings = Settings(
        engine_dir=engines_dir or ENGINES_DIR, backend="onnxruntime", uri_roots=[UPLOADS_DIR],
        uri_hosts=["127.0.0.1"], uri_buckets={"s3": [BUCKET]}, s3_endpoint_url=s3_url,
        max_fetch_bytes=1 << 30, fetch_timeout_s=120, decode_timeout_s=60,
    )
    return Tagger.from_settings(settings, Metrics())


class _http_server:
    """``python -m stream_tagger.testing.servers`` in its own process (it must not share our GIL)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._root = next(iter(files.values())).parent
        self._port = free_port()

    def __enter__(self) -> str:
        self._process = subprocess.Popen([sys.executable, "-m", "stream_tagger.testing.servers", str(self._root),
                                          "--port", str(self._port)], stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{self._port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/ranged/absent", timeout=1).close()
            except urllib.error.HTTPError:  # it answered (404): it is up
                return url
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the HTTP file server did not start")

    def __exit__(self, *exc_info) -> None:
        self._process.terminate()
        self._process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.range_reads", description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--name", default="sources-cpu-2core")
    args = parser.parse_args(argv)
    results = {"command": "python -m bench.range_reads " + " ".join(argv or sys.argv[1:]),
               "machine": machine.describe(), "sources": measure(args.repetitions)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
