"""The real-photo bitrate ladder: clips from scikit-image's photographs, scored through the serving path."""

from __future__ import annotations

import numpy as np
import pytest

from stream_tagger.engines.tiny import FRAGMENTS, write_tiny_engine
from trainer.quality.ladder import (
    RESOLUTIONS,
    evaluate,
    expected_grade,
    make_ladder,
    output_sizes,
    pan_zoom,
    photograph,
    plot,
    summarise,
)

GRADES = ["excellent", "good", "fair", "poor"]


def test_expected_grade_runs_from_the_worst_grade_to_the_best():
    assert expected_grade(np.array([1.0, 0, 0, 0])) == 3.0
    assert expected_grade(np.array([0, 0, 0, 1.0])) == 0.0
    assert expected_grade(np.array([0.5, 0, 0, 0.5])) == pytest.approx(1.5)


def test_pan_zoom_moves_over_the_photograph_at_the_output_size():
    frames = pan_zoom(photograph("coins"), RESOLUTIONS["240p"], 10, np.random.default_rng(1))
    assert frames.shape == (10, 240, 426, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 2  # the camera moved


def _sharpness(frames: np.ndarray) -> float:
    """Mean absolute difference between horizontally neighbouring pixels: enlarging a picture lowers it."""
    return float(np.abs(np.diff(frames.astype(np.int16), axis=2)).mean())


def test_native_framing_never_enlarges_the_photograph():
    camera = photograph("cameraman")  # 512 x 512
    sizes = output_sizes(camera, "native")
    assert sizes == {"higher": (512, 288), "lower": (426, 240)}
    assert output_sizes(camera, "fill") == RESOLUTIONS

    # the same camera path (seed 3) for both framings
    native = pan_zoom(camera, sizes["higher"], 10, np.random.default_rng(3), enlarge=False)
    filled = pan_zoom(camera, RESOLUTIONS["360p"], 10, np.random.default_rng(3))  # 512 px enlarged to 640
    assert native.shape == (10, 288, 512, 3)
    assert _sharpness(native) > 1.2 * _sharpness(filled)
    with pytest.raises(ValueError, match="does not cover"):
        pan_zoom(camera, RESOLUTIONS["360p"], 2, np.random.default_rng(3), enlarge=False)


def _rows(scores_by_rank: dict[str, list[float]], grades_by_rank: dict[str, list[str]]) -> list[dict]:
    return [{"source": "s", "resolution": resolution, "rank": rank, "score": score, "kbps": 100.0 / (rank + 1),
             "grade": grades_by_rank[resolution][rank]}
            for resolution, scores in scores_by_rank.items() for rank, score in enumerate(scores)]


def test_summary_correlates_the_score_with_the_bitrate_rank_and_counts_grades_apart():
    falling = [3.0, 2.9, 2.5, 1.8, 1.0, 0.2]
    rows = _rows({"360p": falling, "240p": [s - 0.1 for s in falling]},
                 {"360p": ["excellent", "excellent", "good", "fair", "poor", "poor"],
                  "240p": ["good", "good", "good", "fair", "fair", "fair"]})
    report = summarise(rows, GRADES)
    assert report["per_source"]["s"]["360p"]["spearman"] == 1.0
    assert report["per_source"]["s"]["spearman"] > 0.95  # pooled over both resolutions
    assert report["per_source"]["s"]["360p"]["grades_apart"] == 3
    assert report["summary"]["min_grades_apart_starved_vs_pristine"] == 1
    assert report["summary"]["acceptance"] == {"median spearman >= 0.9": True,
                                               "every starved >= 2 grades below pristine": False}


def test_the_ladder_is_encoded_from_pristine_to_starved_and_scored_through_the_engine(tmp_path):
    # Given the ladder of one photograph (384 x 303: 320x180 and 256x144 unenlarged) and an engine with a fragments input
    rungs = make_ladder(tmp_path / "work", seed=1, sources=["coins"])
    engine = write_tiny_engine(tmp_path / "engines", "classifier", fragments=FRAGMENTS)

    # When it is evaluated
    report = evaluate(engine, rungs)

    # Then each resolution's rungs run from the most bits to a few kbit/s, and every clip has a score
    assert {rung.resolution: rung.size for rung in rungs} == {"higher": (320, 180), "lower": (256, 144)}
    for resolution in ("higher", "lower"):
        kbps = [r.kbps for r in rungs if r.resolution == resolution]
        assert kbps == sorted(kbps, reverse=True) and kbps[-1] < 20
    assert len(report["clips"]) == len(rungs) == 18
    assert all(0.0 <= row["score"] <= 3.0 and abs(sum(row["probs"]) - 1) < 1e-4 for row in report["clips"])
    assert set(report["per_source"]) == {"coins"}
    assert plot(report, tmp_path / "ladder.png").stat().st_size > 10_000
