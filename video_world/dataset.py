"""``stream-tagger-train make-dataset``: render a deterministic synthetic dataset.

Writes ``OUT/clips/<clip_id>.<ext>`` and ``OUT/manifest.jsonl`` (one line per clip, in clip order).
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
from video_world.render import write_clip
from video_world.spec import WorldOptions, manifest_row, sample_clip

MANIFEST_NAME = "manifest.jsonl"
CLIPS_DIR = "clips"


def generate_dataset(out: str | os.PathLike, clips: int, seed: int, workers: int = 2, progress: bool = False,
                     **options: object) -> list[dict]:
    """Render ``clips`` clips into ``out``; ``options`` are :class:`WorldOptions` fields. Returns the rows."""
    world = WorldOptions(**options)  # type: ignore[arg-type]
    if seed < 0 or clips < 0:
        raise ValueError("seed and clips must be non-negative")
    if world.codec not in CODECS:
        raise ValueError(f"unknown codec {world.codec!r}; expected one of {sorted(CODECS)}")
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
    return rows


def _make_clip(job: tuple[Path, int, int, WorldOptions]) -> dict:
    out, seed, index, world = job
    spec = sample_clip(seed, index, world)
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
    parser.add_argument("--workers", default=2, type=int, help="worker processes (default 2)")


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
    )
    print(f"wrote {len(rows)} clips and {args.out / MANIFEST_NAME}")
    return 0
