"""The recipe oracle tells a grade that follows from the knobs from one that does not."""

from __future__ import annotations

import json

import numpy as np

from trainer.quality.ceiling import BOUNDARY_SETS, graded, oracle


def _dataset(root, seed: int, grade_of_crf: bool) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir()
    rows = []
    for k in range(160):
        crf = int(rng.choice([14, 26, 38, 50]))
        grade = ["excellent", "good", "fair", "poor"][(crf - 14) // 12 if grade_of_crf else int(rng.integers(4))]
        rows.append({"clip_id": f"c{k}", "file": f"clips/c{k}.mp4", "quality": grade, "height": 360,
                     "quality_measure": {"ssim": 0.9, "psnr_db": 35.0 + rng.normal(), "frames": 25, "upload": "360p",
                                         "recipe": {"codec": "h264", "crf": crf, "noise": int(rng.integers(0, 9))}}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_oracle_reads_a_grade_set_by_the_knobs_and_not_a_random_one(tmp_path):
    for name, follows in (("knobs", True), ("random", False)):
        _dataset(tmp_path / f"{name}-train", 1, follows)
        _dataset(tmp_path / f"{name}-eval", 2, follows)
    decided = oracle(tmp_path / "knobs-train", tmp_path / "knobs-eval", repeats=1)
    random = oracle(tmp_path / "random-train", tmp_path / "random-eval", repeats=1)
    assert decided["grade_accuracy"] == 1.0
    assert random["grade_accuracy"] < 0.45
    assert set(decided["grade_accuracy_by_train_clips"]) == {"40", "80", "120", "160"}


def test_other_boundaries_regrade_from_the_measurements():
    rows = [{"quality_measure": {"ssim": ssim, "psnr_db": psnr}} for ssim, psnr in
            ((0.99, 45.0), (0.95, 41.0), (0.99, 33.0), (0.75, 45.0))]
    assert graded(rows, *BOUNDARY_SETS["documented"]).tolist() == [0, 1, 2, 3]
    assert graded(rows, *BOUNDARY_SETS["ssim_only"]).tolist() == [0, 1, 0, 3]
    assert graded(rows, *BOUNDARY_SETS["psnr_only"]).tolist() == [0, 0, 2, 0]
    assert graded(rows, *BOUNDARY_SETS["wide"]).tolist() == [0, 1, 2, 3]
