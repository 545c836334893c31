"""Fixtures of the GPU-path tests: a tiny ONNX engine and a tiny H.264 video, made per test/session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gpu_helpers import write_tiny_engine

from stream_tagger.engines.manifest import EngineManifest


@pytest.fixture
def tiny_engine(tmp_path: Path) -> tuple[Path, EngineManifest]:
    version_dir = tmp_path / "engines" / "early_action" / "1"
    return version_dir, write_tiny_engine(version_dir)


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """Two seconds of H.264 at 320x240 (NVDEC decodes it), made by ffmpeg per session."""
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-y",
            str(path),
        ],
        check=True,
    )
    return path
