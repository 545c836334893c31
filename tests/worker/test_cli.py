"""The CLI: `tag` prints one line per input and exits 0; `engines list`; `produce`."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_cli(*args: str, engine_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAM_TAGGER_ENGINE_DIR": str(engine_dir)}
    return subprocess.run(
        [sys.executable, "-m", "stream_tagger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tag_prints_a_record_per_input_in_order(clip_dir, tiny_engine_dir, tmp_path, validate_tag_record):
    # Given a good clip, a text file named .mp4 and a missing file
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    inputs = [clip_dir / "synth-001.mp4", fake, tmp_path / "missing.mp4"]

    # When they are tagged from the CLI
    result = run_cli("tag", *map(str, inputs), "--title", "Live now", engine_dir=tiny_engine_dir)

    # Then it exits 0 with one JSON line each: a valid tag record, then two error records
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    validate_tag_record(lines[0])
    assert [line.get("code") for line in lines[1:]] == ["decode_failed", "fetch_failed"]
    assert all(line["message"] for line in lines[1:])


def test_engines_list_marks_the_served_versions(tiny_engine_dir):
    result = run_cli("engines", "list", engine_dir=tiny_engine_dir)
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("* ") for line in result.stdout.splitlines()) == 3
    assert "early_action/1@sha256:" in result.stdout


def test_missing_engines_are_a_clean_config_error(tmp_path, clip_dir):
    result = run_cli("tag", str(clip_dir / "synth-000.mp4"), engine_dir=tmp_path)
    assert result.returncode == 2 and "no engine version under" in result.stderr


def test_produce_publishes_one_event_per_file_keyed_by_video_id(broker, topic_factory, clip_dir, tmp_path):
    from worker_helpers import read_topic

    topic = topic_factory(4, "videos.new")
    env = {**os.environ, "STREAM_TAGGER_BROKERS": broker.bootstrap, "STREAM_TAGGER_INPUT_TOPIC": topic}
    clip = clip_dir / "synth-002.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream_tagger.cli",
            "produce",
            str(clip),
            "https://cdn.example/v.mp4",
            "--title",
            "Live",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    events = read_topic(broker, topic, lambda records: len(records) >= 2)
    assert sorted(e["uri"] for e in events) == sorted([clip.resolve().as_uri(), "https://cdn.example/v.mp4"])
    assert {e["video_id"] for e in events} == {"synth-002", "v"} and all(e["title"] == "Live" for e in events)
