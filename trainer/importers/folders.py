"""``stream-tagger-train import folders ROOT --out DIR``: one sub-folder per category (UCF-101, ImageFolder).

``ROOT/<category>/**/<clip>.<ext>``: the category is the top folder's name, the clip id its path below
ROOT without the extension. ``--eval-fraction`` marks a deterministic share of the clips ``split: eval``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainer.datasets.format import DatasetError
from trainer.importers.report import ImportReport
from trainer.importers.run import (
    VIDEO_EXTENSIONS,
    Candidate,
    add_common_arguments,
    import_candidates,
    split_for,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="folder with one sub-folder per category")
    add_common_arguments(parser)
    parser.add_argument("--eval-fraction", type=float, default=0.0, help="share of clips marked split=eval")


def candidates(root: Path, eval_fraction: float, report: ImportReport) -> list[Candidate]:
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    found = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            report.skip(str(entry), None, "invalid_row", "a file directly under ROOT has no category folder")
            continue
        for path in sorted(p for p in entry.rglob("*") if p.is_file() or p.is_symlink()):  # a dangling link is 'missing'
            clip_id = str(path.relative_to(root).with_suffix(""))
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                report.skip(str(path), clip_id, "not_a_video", f"extension {path.suffix or '(none)'!r}")
                continue
            fields = {"clip_id": clip_id, "category": entry.name}
            split = split_for(clip_id, eval_fraction)
            if split:
                fields["split"] = split
            found.append(Candidate(path, fields, str(path.relative_to(root))))
    return found


def run(args: argparse.Namespace) -> int:
    report = ImportReport(f"folders {args.root}")
    return import_candidates(candidates(args.root, args.eval_fraction, report), args, report.source, report)
