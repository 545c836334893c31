"""Can the measured grades be told from the degraded pixels alone? A no-reference probe.

    python -m trainer.quality.learnability --data data/quality-probe --ladder-work data/quality-ladder \\
        --json docs/results/quality/learnability.json

The quality branch never sees the pristine render, so a grade is learnable only as far as the
degraded clip's own pixels show it. This probe measures that with no network in the way: four
textbook no-reference statistics of the native-resolution luma of the first frames (blockiness on the
8-px grid, sharpness, a noise estimate, repeated frames), then

- each statistic's Spearman correlation with the clip's SSIM and PSNR on a measured-grade dataset,
- the held-out accuracy of a multinomial logistic regression on the statistics (5-fold, by clip),
- the same for sharpness and high-pass energy measured inside the patches of the served fragments
  mosaic (``trainer.quality.train.FRAGMENTS``), i.e. what the quality branch is given,
- on the real-photo ladder (``trainer.quality.ladder``), each statistic's Spearman correlation with
  the bitrate rank, per source.

A grade that these statistics cannot separate, while they do follow the real ladder, points at the
world's content rather than at the networks: a blurred or compressed 1/f texture with a shallow
spectrum looks like a pristine one with a steeper spectrum.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import av
import numpy as np
from scipy import ndimage
from scipy.stats import spearmanr

from stream_tagger.decode import make_decoder
from trainer.quality.nets import LUMA
from trainer.quality.train import FRAGMENTS

FEATURES = ("blockiness", "sharpness", "noise", "repeated_frames")
FRAMES = 4
BLOCK = 8


def luma_frames(path: Path, frames: int = FRAMES) -> np.ndarray:
    """float32 ``[T, H, W]``: the first ``frames`` decoded luma planes at native resolution."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="gray").astype(np.float32))
            if len(out) == frames:
                break
    if not out:
        raise ValueError(f"{path}: no frame decoded")
    return np.stack(out)


def blockiness(luma: np.ndarray) -> float:
    """Mean step across the 8-px block grid over the mean step elsewhere (1 = no grid), both axes."""
    ratios = []
    for axis in (-1, -2):
        steps = np.abs(np.diff(luma, axis=axis))
        positions = np.arange(steps.shape[axis])
        on_grid = (positions % BLOCK) == BLOCK - 1
        take = (lambda mask: steps[..., mask]) if axis == -1 else (lambda mask: steps[..., mask, :])
        ratios.append(float(take(on_grid).mean() / (take(~on_grid).mean() + 1e-6)))
    return float(np.mean(ratios))


def sharpness(luma: np.ndarray) -> float:
    """Mean |Laplacian| over mean |gradient|: fine detail relative to the edges' strength."""
    laplace = np.mean([np.abs(ndimage.laplace(plane, mode="nearest")).mean() for plane in luma])  # per frame
    gradient = (np.abs(np.diff(luma, axis=-1)).mean() + np.abs(np.diff(luma, axis=-2)).mean()) / 2
    return float(laplace / (gradient + 1e-6))


def noise(luma: np.ndarray) -> float:
    """Immerkær's fast noise estimate (levels of 0..255), the median over frames."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    sigmas = []
    for plane in luma:
        height, width = plane.shape
        response = np.abs(ndimage.convolve(plane, kernel, mode="nearest"))[1:-1, 1:-1]
        sigmas.append(float(response.sum() * np.sqrt(np.pi / 2) / (6 * (width - 2) * (height - 2))))
    return float(np.median(sigmas))


def repeated_frames(luma: np.ndarray) -> float:
    """Share of consecutive frame pairs that are (nearly) identical: dropped frames repeated."""
    if len(luma) < 2:
        return 0.0
    differences = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
    return float((differences < 0.25).mean())


def _halve(luma: np.ndarray) -> np.ndarray:
    """2×2 box average of the last two axes (odd edges dropped)."""
    h, w = luma.shape[-2] // 2 * 2, luma.shape[-1] // 2 * 2
    x = luma[..., :h, :w]
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) / 4


def _log_energy_quantiles(energy: np.ndarray, grid: int = 8) -> list[float]:
    """The mean and 10/50/90th percentiles over a grid×grid split of the frame of the log mean energy."""
    rows, cols = energy.shape[-2] // grid, energy.shape[-1] // grid
    cells = energy[..., :rows * grid, :cols * grid].reshape(-1, grid, rows, grid, cols).mean(axis=(0, 2, 4))
    logs = np.log(cells.ravel() + 1e-3)
    return [float(logs.mean()), *map(float, np.percentile(logs, [10, 50, 90]))]


def _grid_step(luma: np.ndarray, block: int) -> float:
    """log of the mean step across a ``block``-px grid over the mean step elsewhere, both axes averaged."""
    logs = []
    for axis in (-1, -2):
        steps = np.abs(np.diff(luma, axis=axis))
        on_grid = (np.arange(steps.shape[axis]) % block) == block - 1
        on, off = (steps[..., on_grid], steps[..., ~on_grid]) if axis == -1 else \
            (steps[..., on_grid, :], steps[..., ~on_grid, :])
        logs.append(np.log(on.mean() + 1e-3) - np.log(off.mean() + 1e-3))
    return float(np.mean(logs))


def multiscale_statistics(luma: np.ndarray) -> list[float]:
    """Luma frames ``[T, H, W]`` → a richer no-reference description than :func:`statistics_of` (22 numbers): the Laplacian energy at
    four scales, each as the mean and spread of its log over an 8×8 split of the frame (how detail
    falls off with scale, in flat and in detailed regions); the step across 4, 8 and 16 px grids; the
    log mean frame change and the share of repeated frames; the frame height."""
    laplace = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    values, scaled = [], luma
    for _ in range(4):
        response = np.stack([ndimage.convolve(plane, laplace, mode="nearest") for plane in scaled])
        values += _log_energy_quantiles(response ** 2)
        scaled = _halve(scaled)
    values += [_grid_step(luma, block) for block in (4, 8, 16)]
    change = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2)) if len(luma) > 1 else np.zeros(1)
    return values + [float(np.log(change.mean() + 1e-3)), repeated_frames(luma), float(np.log(luma.shape[-2]))]


def statistics_of(path: Path) -> dict[str, float]:
    luma = luma_frames(path)
    return {"blockiness": blockiness(luma), "sharpness": sharpness(luma), "noise": noise(luma),
            "repeated_frames": repeated_frames(luma)}


def mosaic_statistics(mosaic: np.ndarray, grid: int, patch: int) -> dict[str, float]:
    """Sharpness and high-pass energy inside each patch of a fragments mosaic ``[T, G*P, G*P, 3]``
    (the seams between patches are not the picture's), as the quality branch would see them."""
    luma = mosaic.astype(np.float32) @ np.array(LUMA, np.float32)
    patches = luma.reshape(len(luma), grid, patch, grid, patch).transpose(0, 1, 3, 2, 4).reshape(-1, patch, patch)
    return {"sharpness": sharpness(patches), "noise": noise(patches)}


def served_mosaic(path: Path) -> np.ndarray:
    decoder = make_decoder("pyav")
    try:
        return decoder.decode(str(path), [FRAGMENTS]).frames[FRAGMENTS]
    finally:
        decoder.close()


# ---- the measured-grade dataset -----------------------------------------------------------------
def dataset_probe(root: Path, seed: int = 0) -> dict:
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row.get("quality_measure") and row.get("quality")]
    if not rows:
        raise SystemExit(f"{root}: no row with a measured quality grade (make-dataset --quality-labels measured)")
    table = np.array([[statistics_of(root / row["file"])[name] for name in FEATURES] for row in rows])
    ssim = np.array([row["quality_measure"]["ssim"] for row in rows])
    psnr = np.array([row["quality_measure"]["psnr_db"] for row in rows])
    grades = sorted({row["quality"] for row in rows})
    labels = np.array([grades.index(row["quality"]) for row in rows])
    correlations = {
        name: {"ssim": _rho(table[:, k], ssim), "psnr": _rho(table[:, k], psnr)} for k, name in enumerate(FEATURES)
    }
    accuracy = cross_validated_accuracy(table, labels, len(grades), seed)
    majority = float(np.bincount(labels).max() / len(labels))
    mosaics = [mosaic_statistics(served_mosaic(root / row["file"]), FRAGMENTS.grid, FRAGMENTS.patch) for row in rows]
    on_mosaic = np.array([[m[name] for name in ("sharpness", "noise")] for m in mosaics])
    return {"clips": len(rows), "grades": grades, "grade_counts": np.bincount(labels).tolist(),
            "spearman_with_measurement": correlations,
            "logistic_regression_accuracy_5fold": round(accuracy, 4), "majority_class_accuracy": round(majority, 4),
            "served_fragments": {
                "policy": FRAGMENTS.model_dump(),
                "spearman_with_measurement": {name: {"ssim": _rho(on_mosaic[:, k], ssim), "psnr": _rho(on_mosaic[:, k], psnr)}
                                              for k, name in enumerate(("sharpness", "noise"))},
                "logistic_regression_accuracy_5fold": round(
                    cross_validated_accuracy(on_mosaic, labels, len(grades), seed), 4)}}


def cross_validated_accuracy(x: np.ndarray, y: np.ndarray, classes: int, seed: int, folds: int = 5) -> float:
    """Held-out accuracy of a multinomial logistic regression (standardised log-features), k folds."""
    import torch

    features = np.log(np.abs(x) + 1e-3)
    order = np.random.default_rng(seed).permutation(len(y))
    correct = 0
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        mean, std = features[train].mean(0), features[train].std(0) + 1e-6
        xt = torch.tensor((features[train] - mean) / std, dtype=torch.float32)
        yt = torch.tensor(y[train])
        model = torch.nn.Linear(x.shape[1], classes)
        optimiser = torch.optim.LBFGS(model.parameters(), max_iter=200)

        def closure():
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt) + 1e-3 * model.weight.pow(2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            predicted = model(torch.tensor((features[test] - mean) / std, dtype=torch.float32)).argmax(1).numpy()
        correct += int((predicted == y[test]).sum())
    return correct / len(y)


# ---- the real-photo ladder ----------------------------------------------------------------------
def ladder_probe(work: Path, seed: int) -> dict:
    from trainer.quality.ladder import SOURCES, make_ladder

    rungs = make_ladder(work, seed, list(SOURCES), framing="fill")  # what docs/quality.md's figures used
    values = [statistics_of(rung.path) for rung in rungs]
    per_source = {}
    for source in dict.fromkeys(rung.source for rung in rungs):
        own = [(rung, value) for rung, value in zip(rungs, values) if rung.source == source]
        bitrate_rank = [-rung.rank for rung, _ in own]
        per_source[source] = {name: _rho([value[name] for _, value in own], bitrate_rank) for name in FEATURES}
    medians = {name: round(statistics.median(figures[name] for figures in per_source.values()), 4)
               for name in FEATURES}
    return {"sources": len(per_source), "median_spearman_with_bitrate": medians, "per_source": per_source}


def _rho(a, b) -> float:
    value = spearmanr(a, b).statistic
    return 0.0 if value is None or not np.isfinite(value) else round(float(value), 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.quality.learnability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a dataset made with --quality-labels measured")
    parser.add_argument("--ladder-work", type=Path, help="where the real-photo ladder clips are (made if missing)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    report: dict = {"features": list(FEATURES), "frames": FRAMES}
    if args.data:
        report["dataset"] = {"root": str(args.data), **dataset_probe(args.data, args.seed)}
    if args.ladder_work:
        report["ladder"] = ladder_probe(args.ladder_work, args.seed)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "ladder"} | (
        {"ladder": report["ladder"]["median_spearman_with_bitrate"]} if "ladder" in report else {}), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
