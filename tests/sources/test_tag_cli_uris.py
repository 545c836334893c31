"""``stream-tagger tag`` takes URIs under the worker's policy as well as local paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sources_helpers import BUCKET


def test_tag_cli_reads_http_s3_and_paths_under_the_worker_policy(upload_files, http_files, s3_store, engine_dir,
                                                                 validate_tag_record):
    # Given the worker's settings: one allowed host and one allowed bucket
    env = {**os.environ, **s3_store.env(), "STREAM_TAGGER_ENGINE_DIR": str(engine_dir),
           "STREAM_TAGGER_BACKEND": "onnxruntime", "STREAM_TAGGER_URI_HOSTS": '["127.0.0.1"]',
           "STREAM_TAGGER_URI_BUCKETS": json.dumps({"s3": [BUCKET]})}
    inputs = [
        f"{http_files.url}/ranged/two_hours_end.mp4",
        f"s3://{BUCKET}/two_hours.mp4",
        str(upload_files.path("ten_seconds.mp4")),  # a plain path: the operator's own file
        f"s3://not-allowed/{BUCKET}.mp4",
        (upload_files.root.parent / "elsewhere.mp4").as_uri(),  # a file URI outside the roots
    ]

    # When they are tagged from the CLI
    result = subprocess.run([sys.executable, "-m", "stream_tagger.cli", "tag", *inputs], env=env,
                            capture_output=True, text=True, timeout=120, check=False)

    # Then one line each, in order: three tag records read by range, two refusals
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("code", "tag") for line in lines] == ["tag", "tag", "tag", "uri_forbidden", "uri_forbidden"]
    for record in lines[:3]:
        validate_tag_record(record)
        assert record["decode"]["bytes_fetched"] <= 4_000_000
    assert lines[3]["file"] == inputs[3] and "not in the allowed s3 buckets" in lines[3]["message"]
