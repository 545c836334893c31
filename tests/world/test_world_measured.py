"""Measured quality labels: real encoders degrade, ffmpeg's ssim/psnr grade, the world stays reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy
from video_world.dataset import generate_dataset
from video_world.grades import grade_of
from video_world.ladder import SEVERITY_CENTRES, Recipe, apply_recipe, draw_recipe, write_pristine
from video_world.measure import Measurement, measure
from video_world.measured import UPLOAD_STREAM, write_measured_clip
from video_world.spec import WorldOptions, clip_rng, sample_clip
from video_world.texture import natural_texture
from video_world.upload import draw_size

OPTIONS = WorldOptions(seconds=0.6, quality_labels="measured")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A small textured, panning clip (what the world renders, at a test's size) as a raw reference."""
    rng = np.random.default_rng(0)
    texture = natural_texture(rng, 160, 240, 14.0) + 120
    frames = np.stack([np.clip(texture[k:k + 144, 2 * k:2 * k + 192], 0, 255) for k in range(12)]).astype(np.uint8)
    return write_pristine(frames, tmp_path_factory.mktemp("pristine") / "clip.yuv", fps=25)


@pytest.mark.parametrize("codec", ["h264", "hevc", "vp9"])
def test_quality_falls_along_each_encoders_crf_ladder(pristine, tmp_path, codec):
    figures = []
    for crf in (14, 30, 46):
        out = tmp_path / f"{crf}.{Recipe(codec).extension}"
        apply_recipe(Recipe(codec, crf=crf), pristine, out, seed=1)
        figures.append(measure(out, pristine))
    assert figures[0].frames == 12
    assert figures[0].ssim > figures[1].ssim > figures[2].ssim
    assert figures[0].psnr_db > figures[1].psnr_db > figures[2].psnr_db


def test_capture_filters_and_double_compression_measure_worse_than_the_plain_encode(pristine, tmp_path):
    def measured(recipe: Recipe) -> Measurement:
        out = tmp_path / f"{abs(hash(recipe))}.mp4"
        apply_recipe(recipe, pristine, out, seed=1)
        return measure(out, pristine)

    plain = measured(Recipe("h264", crf=18))
    for damaged in (Recipe("h264", crf=18, noise=20), Recipe("h264", crf=18, blur=2.0),
                    Recipe("h264", crf=18, rescale=3.0), Recipe("h264", crf=18, first_crf=40),
                    Recipe("h264", bpp=0.003)):
        figures = measured(damaged)
        assert figures.ssim < plain.ssim and figures.psnr_db < plain.psnr_db, damaged


def test_a_grade_is_the_worse_of_the_ssim_and_the_psnr_grade():
    assert grade_of(Measurement(0.99, 0.98, 45.0, 10)) == "excellent"
    assert grade_of(Measurement(0.99, 0.98, 33.0, 10)) == "fair"  # blocking on smooth areas: PSNR decides
    assert grade_of(Measurement(0.80, 0.70, 41.0, 10)) == "poor"  # grain: SSIM decides
    assert grade_of(Measurement(0.95, 0.90, 37.0, 10)) == "good"


def test_recipes_grow_harsher_with_the_drawn_severity():
    def rate_step(severity: int, texture: str = "wide") -> float:
        recipes = [draw_recipe(severity, np.random.default_rng([severity, k]), texture) for k in range(300)]
        return float(np.mean([r.crf if r.crf is not None else 60 - 10 * np.log2(r.bpp * 1000) for r in recipes]))

    for texture in SEVERITY_CENTRES:
        steps = [rate_step(severity, texture) for severity in range(4)]
        assert steps == sorted(steps)
    # photo-like texture needs more bits for the same grade, so each severity asks for milder rates
    assert all(rate_step(severity, "photo") < rate_step(severity) for severity in range(4))
    assert {draw_recipe(3, np.random.default_rng(k)).codec for k in range(60)} == {"h264", "hevc", "vp9"}


def _index_of_size(name: str) -> int:
    return next(i for i in range(100) if draw_size(clip_rng(5, i, UPLOAD_STREAM))[0] == name)


def test_measured_clip_is_graded_by_its_measurement_and_is_reproducible(tmp_path):
    # Given a clip that the world renders at 360p
    index = _index_of_size("360p")
    spec = sample_clip(5, index, OPTIONS)
    rows = []
    for run in ("a", "b"):
        (tmp_path / run / "clips").mkdir(parents=True)
        rows.append(write_measured_clip(spec, tmp_path / run, "clips"))

    # Then its row carries the measured grade and the recipe, and a second run writes the same bytes
    row = rows[0]
    measured = Measurement(row["quality_measure"]["ssim"], row["quality_measure"]["ssim_min"],
                           row["quality_measure"]["psnr_db"], row["quality_measure"]["frames"])
    assert row["quality"] == grade_of(measured)
    assert (row["width"], row["height"], row["quality_measure"]["upload"]) == (640, 360, "360p")
    assert row["codec"] == row["quality_measure"]["recipe"]["codec"]
    assert json.dumps(rows[0]) == json.dumps(rows[1])
    assert (tmp_path / "a" / row["file"]).read_bytes() == (tmp_path / "b" / row["file"]).read_bytes()
    policy = SamplingPolicy(frames=4, height=64, width=64, seconds=0.5, max_seconds=1.0)
    clip = make_decoder("pyav").decode(str(tmp_path / "a" / row["file"]), [policy])
    assert clip.source_size == (640, 360)


def test_painted_stays_the_default_and_unknown_label_modes_are_refused(tmp_path):
    assert WorldOptions().quality_labels == "painted"
    with pytest.raises(ValueError, match="quality labels"):
        generate_dataset(tmp_path, clips=1, seed=1, workers=1, quality_labels="guessed")
