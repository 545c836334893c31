"""Every --codec choice writes a file that both the serving decoder and Debian's ffmpeg read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy
from video_world.dataset import generate_dataset
from video_world.encode import CODECS

POLICY = SamplingPolicy(frames=8, height=64, width=64, fraction=0.1, max_seconds=2.0)
FFMPEG = shutil.which("ffmpeg")


@pytest.fixture(scope="module", params=sorted(CODECS))
def codec_clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(request.param)
    rows = generate_dataset(out, clips=1, seed=3, workers=1, codec=request.param, width=64, height=64, seconds=0.6)
    return request.param, out / rows[0]["file"]


def test_serving_decoder_reads_every_codec(codec_clip: tuple[str, Path]) -> None:
    codec, path = codec_clip
    decoded = make_decoder("pyav").decode(str(path), [POLICY])
    assert decoded.frames[POLICY].shape == (8, 64, 64, 3)
    assert decoded.frames[POLICY].std() > 5  # a picture, not a blank
    assert path.suffix == ".webm" if codec == "vp9" else path.suffix == ".mp4"


@pytest.mark.skipif(FFMPEG is None, reason="Debian ffmpeg is installed by scripts/setup-test-env.sh")
def test_debian_ffmpeg_decodes_every_codec_without_error(codec_clip: tuple[str, Path]) -> None:
    _, path = codec_clip
    result = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == ""
