"""Tiny datasets for the trainer tests: real photographs panned and zoomed, and the synthetic world."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.photo_clips import make_photo_clips
from video_world.dataset import generate_dataset

ROOT = Path(__file__).resolve().parents[2]
PHOTO_CLASSES = ["cat", "coffee", "rocket"]


@pytest.fixture(scope="session")
def photo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ROOT/<class>/<clip>.mp4``: 3 classes × 6 clips of 1 s at 96 px (about 3 s to make)."""
    root = tmp_path_factory.mktemp("photos") / "tree"
    make_photo_clips(root, clips_per_class=6, seed=3, classes=PHOTO_CLASSES, size=(96, 96), seconds=1.0)
    return root


@pytest.fixture(scope="session")
def world_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "tiny"
    generate_dataset(out, clips=12, seed=5, workers=1, width=96, height=96, seconds=1.2, tag_noise=0.1)
    return out


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``stream-tagger-train ARGS`` (or ``stream-tagger`` when args[0] == "stream-tagger") as a user runs it."""
    if args and args[0] == "stream-tagger":
        command = [sys.executable, "-m", "stream_tagger.cli", *args[1:]]
    else:
        command = [sys.executable, "-m", "trainer.cli", *args]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False,
                          timeout=timeout)


@pytest.fixture(scope="session")
def validate_tag_record():
    """The worker's published tag-record schema (engine fields optional)."""
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("stream_tagger.schemas").joinpath("tag_record.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate
