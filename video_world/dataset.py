"""``stream-tagger-train make-dataset``: render a deterministic synthetic dataset.

Writes a dataset in the documented format (docs/datasets.md): ``OUT/clips/<clip_id>.<ext>``,
``OUT/manifest.jsonl`` (one line per clip, in clip order) and ``OUT/taxonomy.json`` (the world's label
sets). The trainers read it like any other dataset; the world is one producer among the importers.
The same seed and options give byte-identical files whatever the number of workers: each clip has
its own random streams seeded from (seed, index) and is encoded single-threaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from video_world.encode import CODECS, file_extension
from video_world.labels import taxonomy
from video_world.render import write_clip
from video_world.spec import WorldOptions, manifest_row, sample_clip
from video_world.texture import TEXTURES

MANIFEST_NAME = "manifest.jsonl"
QUALITY_LABELS = ("painted", "measured")
WORLDS = ("v1", "v2")
TAXONOMY_NAME = "taxonomy.json"
CLIPS_DIR = "clips"


def generate_dataset(out: str | os.PathLike, clips: int, seed: int, workers: int = 2, progress: bool = False,
                     **options: object) -> list[dict]:
    """Render ``clips`` clips into ``out``; ``options`` are :class:`WorldOptions` fields. Returns the rows."""
    world = WorldOptions(**options)  # type: ignore[arg-type]
    if seed < 0 or clips < 0:
        raise ValueError("seed and clips must be non-negative")
    if world.codec not in CODECS:
        raise ValueError(f"unknown codec {world.codec!r}; expected one of {sorted(CODECS)}")
    if world.world not in WORLDS:
        raise ValueError(f"unknown world {world.world!r}; expected one of {WORLDS}")
    if world.quality_labels not in QUALITY_LABELS:
        raise ValueError(f"unknown quality labels {world.quality_labels!r}; expected one of {QUALITY_LABELS}")
    if world.texture not in TEXTURES:
        raise ValueError(f"unknown texture {world.texture!r}; expected one of {sorted(TEXTURES)}")
    out = Path(out)
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, index, world) for index in range(clips)]
    results = _run_jobs(jobs, workers)
    if progress:  # tqdm comes with the `train` extra; the demo renders clips on a base install
        from tqdm import tqdm

        results = tqdm(results, total=clips, desc="clips", unit="clip")
    rows = list(results)
    manifest = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (out / MANIFEST_NAME).write_text(manifest, encoding="utf-8")
    (out / TAXONOMY_NAME).write_text(json.dumps(taxonomy(world.world), indent=2) + "\n", encoding="utf-8")
    return rows


def _make_clip(job: tuple[Path, int, int, WorldOptions]) -> dict:
    out, seed, index, world = job
    spec = sample_clip(seed, index, world)
    if world.quality_labels == "measured":  # its own codec, size and file name: see video_world.measured
        from video_world.measured import write_measured_clip

        return write_measured_clip(spec, out, CLIPS_DIR)
    relative = f"{CLIPS_DIR}/{spec.clip_id}.{file_extension(world.codec)}"
    write_clip(spec, out / relative)
    return manifest_row(spec, relative)


def _run_jobs(jobs: list[tuple[Path, int, int, WorldOptions]], workers: int) -> Iterator[dict]:
    """Manifest rows in clip order; clips are rendered by ``workers`` processes."""
    if workers <= 1:
        yield from map(_make_clip, jobs)
        return
    # spawn, not fork: the parent may hold threads (tqdm's monitor) that fork would copy mid-state.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_make_clip, jobs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = {f.name: f.default for f in fields(WorldOptions)}
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--clips", required=True, type=int, help="number of clips")
    parser.add_argument("--seed", required=True, type=int, help="dataset seed")
    parser.add_argument("--size", default="160x160", type=_size, help="frame size WxH (default 160x160)")
    parser.add_argument("--seconds", default=defaults["seconds"], type=float, help="clip length (default 4)")
    parser.add_argument("--fps", default=defaults["fps"], type=int, help="frame rate (default 25)")
    parser.add_argument("--codec", default=defaults["codec"], choices=sorted(CODECS))
    parser.add_argument("--tag-noise", default=defaults["tag_noise"], type=float,
                        help="probability of dropping each true tag and of adding a wrong one (default 0)")
    parser.add_argument("--title-cue-rate", default=defaults["title_cue_rate"], type=float,
                        help="probability that the title carries the timeliness evidence (default 0.75)")
    parser.add_argument("--visual-cue-rate", default=defaults["visual_cue_rate"], type=float,
                        help="probability that the picture carries the timeliness evidence (default 0.75)")
    parser.add_argument("--quality-labels", default=defaults["quality_labels"], choices=QUALITY_LABELS,
                        help="painted: grades are pixel operations on --size renders (default); measured: "
                             "upload-sized renders (360p-1080p) degraded by real encoders, graded by SSIM/PSNR "
                             "against their pristine render (docs/quality.md; use a short --seconds, e.g. 1.2)")
    parser.add_argument("--texture", default=defaults["texture"], choices=sorted(TEXTURES),
                        help="measured labels: wide (beta 1-2, contrast 5-18; default, the first measured world) or "
                             "photo (photographs' range: beta 1-1.3, contrast 12-18, flat and detailed regions), "
                             "video_world/texture.py")
    parser.add_argument("--workers", default=2, type=int, help="worker processes (default 2)")
    parser.add_argument("--world", default=defaults["world"], choices=WORLDS,
                        help="v1: the original world (default); v2: categories by co-occurring tags, long-tailed "
                             "noisy tags, timeliness needing both modalities, long early-action windows "
                             "(video_world/v2.py; docs/datasets.md)")
    parser.add_argument("--title-noise", default=defaults["title_noise"], type=float,
                        help="world v2: probability that a title's timeliness cue is wrong (default 0.08)")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from exc
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError("width and height must be even and at least 32")
    return width, height


def run(args: argparse.Namespace) -> int:
    width, height = args.size
    rows = generate_dataset(
        args.out, args.clips, args.seed, workers=args.workers, progress=True,
        width=width, height=height, seconds=args.seconds, fps=args.fps, codec=args.codec,
        tag_noise=args.tag_noise, title_cue_rate=args.title_cue_rate, visual_cue_rate=args.visual_cue_rate,
        quality_labels=args.quality_labels, texture=args.texture, world=args.world, title_noise=args.title_noise,
    )
    print(f"wrote {len(rows)} clips and {args.out / MANIFEST_NAME}")
    return 0
