"""Fixtures of the worker tests: tiny contract-following engines, small clips, schema validators."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from stream_tagger.engines.tiny import write_tiny_repository


@pytest.fixture(scope="session")
def tiny_engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """engines/<engine>/1/ for all three engines, built with onnx.helper (version 1, per session)."""
    return write_tiny_repository(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 2-second 96x96 H.264 clips (PyAV-encoded): synth-000.mp4 … synth-002.mp4."""
    from stream_tagger.testing.clips import make_clips

    folder = tmp_path_factory.mktemp("clips")
    make_clips(folder, 3)
    return folder


def _validator(name: str) -> Callable[[dict], None]:
    schema = json.loads(resources.files("stream_tagger.schemas").joinpath(name).read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return validator.validate


@pytest.fixture(scope="session")
def validate_tag_record() -> Callable[[dict], None]:
    return _validator("tag_record.schema.json")


@pytest.fixture(scope="session")
def validate_dlq_record() -> Callable[[dict], None]:
    return _validator("dlq_record.schema.json")
