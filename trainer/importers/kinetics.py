"""``stream-tagger-train import kinetics CSV --videos DIR --out DIR``: a Kinetics annotation file.

Columns ``label,youtube_id,time_start,time_end,split``; the videos are the local files the Kinetics
download scripts write, ``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``. ``label`` becomes the
category; ``split`` train stays train, val/validate/test become eval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainer.importers.csv_file import read_rows
from trainer.importers.report import ImportReport
from trainer.importers.run import Candidate, add_common_arguments, import_candidates

REQUIRED = ("label", "youtube_id", "time_start", "time_end", "split")
SPLITS = {"train": "train", "val": "eval", "validate": "eval", "validation": "eval", "test": "eval"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, help="Kinetics annotation CSV")
    parser.add_argument("--videos", type=Path, required=True, help="folder of the downloaded clips")
    add_common_arguments(parser)


def file_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def candidates(path: Path, videos: Path, report: ImportReport) -> list[Candidate]:
    _, records = read_rows(path, REQUIRED)
    found = []
    for number, record in records:
        origin = f"{path.name} line {number}"
        label, youtube_id = (record.get("label") or "").strip(), (record.get("youtube_id") or "").strip()
        try:
            start, end = int(float(record["time_start"])), int(float(record["time_end"]))
        except (TypeError, ValueError):
            report.skip(origin, youtube_id or None, "invalid_row",
                        f"time_start/time_end not numbers: {record.get('time_start')!r}, {record.get('time_end')!r}")
            continue
        clip_id = f"{youtube_id}_{start:06d}_{end:06d}"
        split = SPLITS.get((record.get("split") or "").strip().lower())
        if not label or not youtube_id or split is None:
            report.skip(origin, clip_id, "invalid_row", f"needs a label, a youtube_id and a split in {sorted(SPLITS)}")
            continue
        fields = {"clip_id": clip_id, "category": label, "split": split}
        found.append(Candidate(videos / file_name(youtube_id, start, end), fields, origin))
    return found


def run(args: argparse.Namespace) -> int:
    report = ImportReport(f"kinetics {args.csv}")
    return import_candidates(candidates(args.csv, args.videos, report), args, report.source, report)
