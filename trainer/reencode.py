"""``stream-tagger-train reencode``: a dataset as uploads arrive, to evaluate decode settings on.

    stream-tagger-train reencode --data data/eval --out data/eval-upload [--crf 23] [--preset medium]

The world's clips are encoded for speed (x264 ``ultrafast``: no B-frames, no deblocking filter), so a
decode setting that skips B-frames or deblocking changes nothing on them. Phones and editors upload
with B-frames and deblocking; this writes a copy of the dataset with every clip re-encoded so by
Debian's ffmpeg (x264 at the given preset: B-frames, in-loop deblocking, CABAC), same size, rate and
labels, so that ``adopt-decode`` measures what a setting really does to the engines' pictures.
"""

from __future__ import annotations

import argparse
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from trainer.datasets.format import MANIFEST_NAME, TAXONOMY_NAME, Dataset, DatasetError, write_manifest
from video_world.ladder import run_ffmpeg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="the dataset to copy")
    parser.add_argument("--out", type=Path, required=True, help="folder for the re-encoded copy (must not exist)")
    parser.add_argument("--crf", type=int, default=23, help="x264 CRF (default 23, x264's own default)")
    parser.add_argument("--preset", default="medium", help="x264 preset (default medium: 3 B-frames, deblocking)")
    parser.add_argument("--jobs", type=int, default=2, help="ffmpeg processes at once (default 2)")


def run(args: argparse.Namespace) -> int:
    dataset = Dataset.load(args.data)
    if args.out.exists():
        raise DatasetError(f"{args.out}: already exists")
    staging = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "clips").mkdir(parents=True)

    def reencode(row) -> dict:
        target = Path("clips") / (Path(row.file).stem + ".mp4")
        run_ffmpeg(["-i", str(dataset.path(row)), "-an", "-c:v", "libx264", "-preset", args.preset,
                    "-crf", str(args.crf), "-pix_fmt", "yuv420p", "-x264-params", "threads=1:log-level=none",
                    str(staging / target)])
        return row.model_dump(exclude_none=True) | {"file": str(target), "codec": "h264",
                                                    "encode": f"x264 {args.preset} crf {args.crf}"}

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(tqdm(pool.map(reencode, dataset.rows), total=len(dataset), unit="clip", desc="clips"))
    write_manifest(staging, rows)
    if (args.data / TAXONOMY_NAME).is_file():
        shutil.copyfile(args.data / TAXONOMY_NAME, staging / TAXONOMY_NAME)
    staging.rename(args.out)
    print(json.dumps({"clips": len(rows), "out": str(args.out / MANIFEST_NAME), "preset": args.preset,
                      "crf": args.crf}))
    return 0
