"""``stream-tagger-train evaluate quality-ladder``: does the quality score follow the bitrate on real footage?

Real photographs shipped by scikit-image (``skimage/data``) are moved by pans and zooms into short
clips at two resolutions, and each clip is encoded with H.264 along a bitrate ladder, from pristine
(CRF 10) down to starved rates (a few kbit/s, blocks plainly visible). The classifier engine scores
every encoded clip through the worker's own decoder and runtime; the quality score is the expected
grade under the output probabilities (0 = the worst grade … K-1 = the best). Per source, the report
gives the Spearman rank correlation between that score and the bitrate rank (both resolutions
pooled, and per resolution) and the grades of the pristine and the starved versions.

``--framing`` decides the two resolutions. ``native`` (default): per source, the two largest 16:9 sizes
its photograph covers without being enlarged, and zooms that never enlarge it. ``fill``: 360p and 240p
for every source, the photograph resized to fill them (most of scikit-image's photographs are 512 px,
so their 360p copies are upscaled up to 2×). An upscaled "pristine" copy is soft, and softness from a
rescale is damage the measured grades count (the world's downscale-then-upscale recipe), so ``fill``
asks the engine to call a damaged copy pristine; it stays to reproduce the figures measured with it.

    stream-tagger-train evaluate quality-ladder --engine engines/classifier/2 \\
        --json docs/results/quality-ladder.json --plot docs/results/quality-ladder.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from stream_tagger.decode import make_decoder
from stream_tagger.engines.repository import load_engine
from video_world.ladder import BITRATE_LADDER_BPP, Recipe, apply_recipe, write_pristine

#: source name -> file in skimage/data: every real photograph it ships (colour and greyscale).
SOURCES = {"astronaut": "astronaut.png", "cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
           "galaxies": "hubble_deep_field.jpg", "tissue": "ihc.png", "motorcycle": "motorcycle_left.png",
           "retina": "retina.jpg", "cameraman": "camera.png", "brick": "brick.png", "grass": "grass.png",
           "gravel": "gravel.png", "moon": "moon.png", "coins": "coins.png"}
RESOLUTIONS = {"360p": (640, 360), "240p": (426, 240)}
#: ``--framing native``: 16:9 sizes, largest first; a source gets the two largest its photograph covers.
NATIVE_SIZES = ((1280, 720), (960, 540), (640, 360), (512, 288), (426, 240), (320, 180), (256, 144))
FRAMINGS = ("native", "fill")
PRISTINE_CRF = 10
FPS, SECONDS = 25, 1.2
DEFAULT_WORK = Path("data/quality-ladder")


@dataclass(frozen=True)
class Rung:
    """One encoded version: ``bpp`` None is the pristine one (CRF 10)."""

    source: str
    resolution: str
    rank: int  # 0 = pristine … len(ladder) = the most starved
    bpp: float | None
    path: Path
    kbps: float = 0.0  # what the file really holds (container bitrate of its video)
    size: tuple[int, int] = (0, 0)  # width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", type=Path, required=True, help="classifier version folder (engines/classifier/N)")
    parser.add_argument("--json", type=Path, required=True, help="write the report here")
    parser.add_argument("--plot", type=Path, help="write score against bitrate here (PNG)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where the ladder clips are made (kept)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--sources", nargs="+", choices=sorted(SOURCES), help="default: all")
    parser.add_argument("--framing", choices=FRAMINGS, default="native",
                        help="native: per source, the two largest sizes its photograph covers unenlarged; "
                             "fill: 360p and 240p, the photograph resized to fill them")


def run(args: argparse.Namespace) -> int:
    rungs = make_ladder(args.work, args.seed, args.sources or list(SOURCES), args.framing)
    report = evaluate(args.engine, rungs) | {"framing": args.framing}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)
    print(json.dumps(report["summary"], indent=2))
    return 0


# ---- the ladder ---------------------------------------------------------------------------------
def make_ladder(work: Path, seed: int, sources: list[str], framing: str = "native") -> list[Rung]:
    """Every source × resolution × rung, encoded once into ``work`` (files already there are kept)."""
    rungs = []
    for k, source in enumerate(sources):
        image = photograph(source)
        for resolution, size in output_sizes(image, framing).items():
            # fill keeps the folder it had before native existed, so its encoded clips are reused
            folder = work / (f"seed{seed}" if framing == "fill" else f"seed{seed}-{framing}") / source / resolution
            folder.mkdir(parents=True, exist_ok=True)
            paths = [folder / f"rung{rank}.mp4" for rank in range(len(BITRATE_LADDER_BPP) + 1)]
            if not all(path.exists() for path in paths):
                frames = pan_zoom(image, size, round(FPS * SECONDS), np.random.default_rng([seed, k]),
                                  enlarge=framing == "fill")
                _encode_ladder(frames, paths)
            rungs += [Rung(source, resolution, rank, None if rank == 0 else BITRATE_LADDER_BPP[rank - 1], path,
                           _video_kbps(path), size) for rank, path in enumerate(paths)]
    return rungs


def output_sizes(image: Image.Image, framing: str) -> dict[str, tuple[int, int]]:
    """The two resolutions of a source: fixed (``fill``) or the two largest it covers unenlarged."""
    if framing == "fill":
        return RESOLUTIONS
    sizes = [(width, height) for width, height in NATIVE_SIZES if width <= image.width and height <= image.height]
    if len(sizes) < 2:
        raise ValueError(f"a {image.width}x{image.height} photograph covers fewer than two of {NATIVE_SIZES}")
    return {"higher": sizes[0], "lower": sizes[1]}


def photograph(source: str) -> Image.Image:
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / SOURCES[source]).convert("RGB")


def pan_zoom(image: Image.Image, size: tuple[int, int], frames: int, rng: np.random.Generator,
             enlarge: bool = True) -> np.ndarray:
    """uint8 ``[frames, H, W, 3]``: a camera that pans across the photograph while it zooms in or out.

    The crop window is as large as the photograph allows at the output's aspect (zoom 1.0 to 1.25),
    resampled with Lanczos. With ``enlarge`` off the zoom stops where the window would become smaller
    than the output, so no frame is upscaled (the photograph must cover the output at zoom 1).
    """
    width, height = image.size
    aspect = size[0] / size[1]
    full_w = min(width, height * aspect)
    if not enlarge and full_w < size[0]:
        raise ValueError(f"a {width}x{height} photograph does not cover {size[0]}x{size[1]} unenlarged")
    deepest = rng.uniform(1.12, 1.25)
    zoom_from, zoom_to = rng.permutation([1.0, deepest if enlarge else min(deepest, full_w / size[0])])
    start, end = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
    out = np.empty((frames, size[1], size[0], 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        crop_w = full_w / (zoom_from + (zoom_to - zoom_from) * t)
        crop_h = crop_w / aspect
        cx, cy = start + (end - start) * t
        left, top = cx * (width - crop_w), cy * (height - crop_h)
        out[i] = np.asarray(image.resize(size, Image.LANCZOS, box=(left, top, left + crop_w, top + crop_h)))
    return out


def _encode_ladder(frames: np.ndarray, paths: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        pristine = write_pristine(frames, Path(scratch) / "pristine.yuv", FPS)
        recipes = [Recipe("h264", crf=PRISTINE_CRF)] + [Recipe("h264", bpp=bpp) for bpp in BITRATE_LADDER_BPP]
        for recipe, path in zip(recipes, paths):
            partial = path.with_suffix(".partial.mp4")
            apply_recipe(recipe, pristine, partial, seed=0)
            partial.rename(path)


def _video_kbps(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else SECONDS
        payload = sum(packet.size for packet in container.demux(stream) if packet.size)
    return round(payload * 8 / seconds / 1000, 2)


# ---- scoring ------------------------------------------------------------------------------------
def expected_grade(probs: np.ndarray) -> float:
    """Σ p_k · (K-1-k) for grades ordered best to worst: K-1 = surely the best grade, 0 = the worst."""
    grades = len(probs)
    return float(np.dot(probs, np.arange(grades - 1, -1, -1)))


def evaluate(engine_dir: Path, rungs: list[Rung]) -> dict:
    engine = load_engine(engine_dir, "onnxruntime", threads=1)
    decoder = make_decoder("pyav")
    grades = engine.manifest.labels["quality"]
    rows = []
    try:
        for rung in rungs:
            clip = decoder.decode(str(rung.path), engine.sampling_policies)
            frames = {policy: array[None] for policy, array in clip.frames.items()}
            probs = engine.infer(frames, [""])["quality_probs"][0]
            rows.append({**asdict(rung), "path": str(rung.path), "probs": [round(float(p), 5) for p in probs],
                         "grade": grades[int(np.argmax(probs))], "score": round(expected_grade(probs), 4)})
    finally:
        engine.close()
        decoder.close()
    sizes = {resolution: sorted({rung.size for rung in rungs if rung.resolution == resolution})
             for resolution in dict.fromkeys(rung.resolution for rung in rungs)}
    return {"engine": engine.manifest.ref, "grades": grades, "resolutions": sizes,
            "ladder_bpp": [None, *BITRATE_LADDER_BPP], "pristine_crf": PRISTINE_CRF, "fps": FPS,
            "seconds": SECONDS, "clips": rows, **summarise(rows, grades)}


def summarise(rows: list[dict], grades: list[str]) -> dict:
    from scipy.stats import spearmanr

    sources = list(dict.fromkeys(row["source"] for row in rows))
    per_source = {}
    for source in sources:
        own = [row for row in rows if row["source"] == source]
        # bitrate rank: higher = more bits; the same rung at both resolutions shares its rank
        pooled = spearmanr([-row["rank"] for row in own], [row["score"] for row in own]).statistic
        figures: dict = {"spearman": _finite(pooled)}
        for resolution in dict.fromkeys(row["resolution"] for row in own):
            ladder = sorted((row for row in own if row["resolution"] == resolution), key=lambda row: row["rank"])
            rho = spearmanr([-row["rank"] for row in ladder], [row["score"] for row in ladder]).statistic
            pristine, starved = ladder[0], ladder[-1]
            gap = grades.index(starved["grade"]) - grades.index(pristine["grade"])
            figures[resolution] = {"spearman": _finite(rho), "pristine_grade": pristine["grade"],
                                   "starved_grade": starved["grade"], "grades_apart": gap,
                                   "pristine_score": pristine["score"], "starved_score": starved["score"],
                                   "starved_kbps": starved["kbps"]}
        per_source[source] = figures
    rhos = [figures["spearman"] for figures in per_source.values()]
    gaps = [figures[r]["grades_apart"] for figures in per_source.values() for r in figures if r != "spearman"]
    summary = {
        "sources": len(sources),
        "median_spearman": round(statistics.median(rhos), 4),
        "min_spearman": round(min(rhos), 4),
        "min_grades_apart_starved_vs_pristine": min(gaps),
        "acceptance": {"median spearman >= 0.9": statistics.median(rhos) >= 0.9,
                       "every starved >= 2 grades below pristine": min(gaps) >= 2},
    }
    return {"per_source": per_source, "summary": summary}


def _finite(value: float) -> float:
    """A ladder whose scores are all equal has no rank correlation: count it as 0, not NaN."""
    return 0.0 if value is None or not np.isfinite(value) else round(float(value), 4)


# ---- plot ---------------------------------------------------------------------------------------
def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resolutions = list(report["resolutions"])
    figure, axes = plt.subplots(1, len(resolutions), figsize=(6 * len(resolutions), 4.5), sharey=True)
    top = len(report["grades"]) - 1
    for axis, resolution in zip(np.atleast_1d(axes), resolutions):
        for k, source in enumerate(report["per_source"]):
            own = sorted((row for row in report["clips"] if row["source"] == source and row["resolution"] == resolution),
                         key=lambda row: row["kbps"])
            # tab20: 14 sources need more colours than the default cycle's 10
            axis.plot([row["kbps"] for row in own], [row["score"] for row in own], marker="o", ms=3, label=source,
                      color=plt.cm.tab20(k % 20))
        axis.set_xscale("log")
        sizes = ", ".join(f"{width}x{height}" for width, height in report["resolutions"][resolution])
        axis.set_title(f"{resolution} ({sizes})", fontsize=9)
        axis.set_xlabel("video bitrate (kbit/s, log)")
        axis.set_yticks(range(top + 1), [f"{k} {report['grades'][top - k]}" for k in range(top + 1)])
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("quality score (expected grade)")
    np.atleast_1d(axes)[-1].legend(fontsize=7, ncol=2, loc="lower right")
    summary = report["summary"]
    figure.suptitle(f"{report['engine']}: median Spearman {summary['median_spearman']} over {summary['sources']} "
                    "sources (H.264 ladder, CRF 10 to starved)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
