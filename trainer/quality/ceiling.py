"""How far the measured grades follow from the damage done, whatever the picture: the recipe oracle.

    python -m trainer.quality.ceiling --train data/qtrain-photo --eval data/qeval-photo \\
        --json docs/results/quality/ceiling-photo.json

A measured grade (``video_world.grades``) depends on the degradation (codec, rate step, noise, blur,
rescale, dropped frames, an earlier encode, the upload size: the manifest's ``quality_measure.recipe``)
and on the content it was applied to (the same CRF costs a detailed texture more dB than a flat one).
A gradient-boosted classifier given every knob of the recipe, which no model of the degraded pixels
knows exactly, bounds what knowing the damage alone is worth; the rest of each grade is the content's.
It reports the held-out accuracy on the documented grades and on each measurement's grade alone,
its learning curve over the training set's size, and how closely the knobs give PSNR and SSIM.

``--pixels`` adds what the degraded pixels say: the same classifier on 22 no-reference statistics of
the clip's first frames (``trainer.quality.learnability.multiscale_statistics``), and on those
statistics and the knobs together; and, for each set of grade boundaries in :data:`BOUNDARY_SETS`
(the documented ones, wider ones, one measurement alone), all three accuracies, so that how much a
different choice of boundaries would buy is measured, not argued.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from trainer.datasets.format import Dataset
from video_world.grades import PSNR_FLOORS_DB, SSIM_FLOORS, grade_index
from video_world.labels import QUALITY_GRADES
from video_world.ladder import CODEC_WEIGHTS, Recipe

CODECS = tuple(CODEC_WEIGHTS)
KNOBS = ("codec", "crf", "bpp", "noise", "blur", "rescale", "drop", "first_crf", "height")
SIZES = (0.25, 0.5, 0.75, 1.0)
#: name -> (SSIM floors, PSNR floors in dB), best grade first; a floor of -inf leaves that measurement out.
NEVER = float("-inf")
BOUNDARY_SETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "documented": (SSIM_FLOORS, PSNR_FLOORS_DB),
    "wide": ((0.975, 0.92, 0.80), (42.0, 35.0, 28.0)),
    "wider": ((0.98, 0.92, 0.78), (43.0, 35.0, 27.0)),
    "ssim_only": (SSIM_FLOORS, (NEVER,) * 3),
    "psnr_only": ((NEVER,) * 3, PSNR_FLOORS_DB),
}


def knobs(row: dict) -> list[float]:
    """A row's recipe as numbers (-1 for a rate setting the recipe does not use)."""
    recipe = Recipe(**row["quality_measure"]["recipe"])
    return [CODECS.index(recipe.codec), -1 if recipe.crf is None else recipe.crf,
            -1 if recipe.bpp is None else recipe.bpp, recipe.noise, recipe.blur, recipe.rescale, recipe.drop,
            -1 if recipe.first_crf is None else recipe.first_crf, row["height"]]


def _rows(dataset: Dataset) -> list[dict]:
    rows = [row.model_dump() for row in dataset.rows]
    rows = [row for row in rows if row.get("quality_measure") and row.get("quality")]
    if not rows:
        raise SystemExit(f"{dataset.root}: no row carries quality_measure (make it with --quality-labels measured)")
    return rows


def measured_rows(root: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    dataset = Dataset.load(root)
    rows = _rows(dataset)
    grades = (dataset.taxonomy and dataset.taxonomy.labels("quality")) or list(QUALITY_GRADES)
    targets = {"grade": np.array([grades.index(r["quality"]) for r in rows]),
               "psnr_db": np.array([r["quality_measure"]["psnr_db"] for r in rows]),
               "ssim": np.array([r["quality_measure"]["ssim"] for r in rows])}
    targets["ssim_grade"] = np.array([grade_index(v, SSIM_FLOORS) for v in targets["ssim"]])
    targets["psnr_grade"] = np.array([grade_index(v, PSNR_FLOORS_DB) for v in targets["psnr_db"]])
    return np.array([knobs(r) for r in rows], np.float64), targets


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=seed)


def oracle(train: Path, held_out: Path, seed: int = 0, repeats: int = 5) -> dict:
    x, y = measured_rows(train)
    xe, ye = measured_rows(held_out)
    report: dict = {"train_clips": len(x), "eval_clips": len(xe), "knobs": list(KNOBS),
                    "majority_accuracy": round(float(np.bincount(ye["grade"]).max() / len(xe)), 4)}
    for target in ("grade", "ssim_grade", "psnr_grade"):
        predicted = _classifier(seed).fit(x, y[target]).predict(xe)
        report[f"{target}_accuracy"] = round(float((predicted == ye[target]).mean()), 4)
        if target == "grade":
            report["grade_within_one_accuracy"] = round(float((np.abs(predicted - ye[target]) <= 1).mean()), 4)
    rng = np.random.default_rng(seed)
    curve = {}
    for share in SIZES:
        n = max(int(share * len(x)), 8)
        accs = []
        for k in range(repeats if n < len(x) else 1):
            pick = rng.permutation(len(x))[:n]
            accs.append(float((_classifier(seed + k).fit(x[pick], y["grade"][pick]).predict(xe) == ye["grade"]).mean()))
        curve[str(n)] = {"mean": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4)}
    report["grade_accuracy_by_train_clips"] = curve
    for target in ("psnr_db", "ssim"):
        fitted = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed).fit(x, y[target])
        report[f"{target}_rmse"] = round(float(np.sqrt(np.mean((fitted.predict(xe) - ye[target]) ** 2))), 4)
        report[f"{target}_std"] = round(float(ye[target].std()), 4)
    return report


def graded(rows: list[dict], ssim_floors: tuple[float, ...], psnr_floors: tuple[float, ...]) -> np.ndarray:
    """Grade indices (0 best) under other boundaries: the worse of the two measurements' grades."""
    return np.array([max(grade_index(r["quality_measure"]["ssim"], ssim_floors),
                         grade_index(r["quality_measure"]["psnr_db"], psnr_floors)) for r in rows])


def pixel_statistics(root: Path, rows: list[dict], jobs: int = 2) -> np.ndarray:
    from trainer.quality.learnability import luma_frames, multiscale_statistics

    def of(path: Path) -> list[float]:
        return multiscale_statistics(luma_frames(path))

    return np.array(Parallel(n_jobs=jobs)(delayed(of)(root / r["file"]) for r in rows))


def pixels_study(train: Path, held_out: Path, seed: int = 0) -> dict:
    """Per boundary set: held-out accuracy from the knobs, from the pixels' statistics, and from both."""
    rows, rows_eval = _rows(Dataset.load(train)), _rows(Dataset.load(held_out))
    knob_x, knob_xe = (np.array([knobs(r) for r in rs], np.float64) for rs in (rows, rows_eval))
    pixel_x, pixel_xe = pixel_statistics(train, rows), pixel_statistics(held_out, rows_eval)
    inputs = {"knobs": (knob_x, knob_xe), "pixels": (pixel_x, pixel_xe),
              "pixels_and_knobs": (np.hstack([pixel_x, knob_x]), np.hstack([pixel_xe, knob_xe]))}
    report = {}
    for name, (ssim_floors, psnr_floors) in BOUNDARY_SETS.items():
        y, ye = graded(rows, ssim_floors, psnr_floors), graded(rows_eval, ssim_floors, psnr_floors)
        entry = {"ssim_floors": list(ssim_floors), "psnr_floors_db": list(psnr_floors),
                 "held_out_grade_counts": np.bincount(ye, minlength=len(ssim_floors) + 1).tolist(),
                 "majority_accuracy": round(float(np.bincount(ye).max() / len(ye)), 4)}
        for source, (x, xe) in inputs.items():
            entry[f"{source}_accuracy"] = round(float((_classifier(seed).fit(x, y).predict(xe) == ye).mean()), 4)
        report[name] = entry
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.quality.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True, help="a dataset made with --quality-labels measured")
    parser.add_argument("--eval", type=Path, required=True, help="its held-out set (another seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--pixels", action="store_true",
                        help="also the no-reference statistics of the degraded clips, per set of grade boundaries")
    args = parser.parse_args(argv)
    report = oracle(args.train, args.eval, args.seed)
    if args.pixels:
        report["boundary_sets"] = pixels_study(args.train, args.eval, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
