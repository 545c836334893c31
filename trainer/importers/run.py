"""The import itself, whatever the source: check every candidate, place the kept files, write the dataset."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy
from trainer.datasets.format import (
    MANIFEST_NAME,
    TAXONOMY_NAME,
    DatasetError,
    DatasetRow,
    Taxonomy,
    read_taxonomy,
    write_manifest,
)
from trainer.importers.report import ImportReport

REPORT_NAME = "import-report.json"
CLIPS_DIR = "clips"
CHECK_THREADS = 2
#: What "yields its early frames" means at import: the classifier's default input (8 frames of the first second).
CHECK_POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mpg", ".mpeg", ".3gp", ".ogv"}


@dataclass
class Candidate:
    """A row to import: its source file, the manifest fields it carries, and where it came from."""

    source: Path
    fields: dict
    origin: str
    extras: dict = field(default_factory=dict)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write (must not hold a dataset)")
    parser.add_argument("--mode", choices=("link", "copy"), default="link",
                        help="symlink the videos into DIR/clips (default) or copy them")
    parser.add_argument("--taxonomy", type=Path, help="taxonomy.json fixing the label sets (rows outside are skipped)")
    parser.add_argument("--min-clips", type=int, default=5, help="report classes with fewer clips than this")


def import_candidates(candidates: Iterable[Candidate], args: argparse.Namespace, source: str,
                      report: ImportReport | None = None) -> int:
    """Check, place and write; print the report. Exit status 0 when at least one row is kept."""
    out: Path = args.out
    if (out / MANIFEST_NAME).exists():
        raise DatasetError(f"{out} already holds a {MANIFEST_NAME}; import into a new folder")
    taxonomy = read_taxonomy(args.taxonomy) if args.taxonomy else None
    if args.taxonomy and taxonomy is None:
        raise DatasetError(f"--taxonomy {args.taxonomy}: no such file")
    report = report or ImportReport(source)
    report.min_clips = args.min_clips
    valid = [c for c in candidates if _valid(c, report)]
    labelled = [c for c in valid if _labels_known(c, taxonomy, report)]
    unique = _unique_ids(labelled, report)
    present = [c for c in unique if _file_present(c, report)]
    checked = _decodable(present, report)
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    for candidate in checked:
        report.kept.append({**candidate.fields, "file": _place(candidate, out, args.mode), **candidate.extras})
    write_manifest(out, report.kept)
    if taxonomy is not None:
        (out / TAXONOMY_NAME).write_text(taxonomy.model_dump_json(indent=2, exclude_none=True) + "\n")
    report.write(out / REPORT_NAME)
    for line in report.lines():
        print(line)
    print(f"wrote {out / MANIFEST_NAME} and {out / REPORT_NAME}")
    return 0 if report.kept else 1


def _valid(candidate: Candidate, report: ImportReport) -> bool:
    try:
        DatasetRow.model_validate({**candidate.fields, "file": candidate.source.name or "?"})
    except ValidationError as exc:
        error = exc.errors()[0]
        report.skip(candidate.origin, candidate.fields.get("clip_id"), "invalid_row",
                    f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
        return False
    return True


def _labels_known(candidate: Candidate, taxonomy: Taxonomy | None, report: ImportReport) -> bool:
    if taxonomy is None:
        return True
    row = candidate.fields
    for family in ("category", "tags", "quality", "timeliness", "early_action", "clean_tags"):
        known = taxonomy.labels("tags" if family == "clean_tags" else family)
        if known is None or row.get(family) is None:
            continue
        values = row[family] if isinstance(row[family], list) else [row[family]]
        outside = [v for v in values if v not in known]
        if outside:
            report.skip(candidate.origin, row.get("clip_id"), "label_outside_taxonomy",
                        f"{family} {', '.join(map(repr, outside))} not in taxonomy.json")
            return False
    return True


def _unique_ids(candidates: list[Candidate], report: ImportReport) -> list[Candidate]:
    first: dict[str, str] = {}
    kept = []
    for candidate in candidates:
        clip_id = candidate.fields["clip_id"]
        if clip_id in first:
            report.skip(candidate.origin, clip_id, "duplicate_clip_id", f"already used by {first[clip_id]}")
            continue
        first[clip_id] = candidate.origin
        kept.append(candidate)
    return kept


def _file_present(candidate: Candidate, report: ImportReport) -> bool:
    path, clip_id = candidate.source, candidate.fields["clip_id"]
    if not path.is_file():
        report.skip(candidate.origin, clip_id, "missing", f"{path} does not exist")
        return False
    if path.stat().st_size == 0:
        report.skip(candidate.origin, clip_id, "empty", f"{path} is 0 bytes")
        return False
    return True


def _decodable(candidates: list[Candidate], report: ImportReport) -> list[Candidate]:
    """The candidates whose early frames the serving decoder yields (checked CHECK_THREADS at a time)."""
    decoder = make_decoder("pyav")

    def problem(candidate: Candidate) -> str | None:
        try:
            decoder.decode(str(candidate.source), [CHECK_POLICY])
            return None
        except Exception as exc:  # noqa: BLE001 - any failure of one clip is that clip's report line
            return f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        problems = list(pool.map(problem, candidates))
    decoder.close()
    kept = []
    for candidate, issue in zip(candidates, problems):
        if issue is None:
            kept.append(candidate)
        else:
            report.skip(candidate.origin, candidate.fields["clip_id"], "undecodable", issue)
    return kept


def _place(candidate: Candidate, out: Path, mode: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", candidate.fields["clip_id"]) + candidate.source.suffix.lower()
    relative = f"{CLIPS_DIR}/{name}"
    target = out / relative
    if target.exists() or target.is_symlink():
        target.unlink()
    if mode == "copy":
        shutil.copy2(candidate.source, target)
    else:
        os.symlink(candidate.source.resolve(), target)
    return relative


def split_for(clip_id: str, eval_fraction: float) -> str | None:
    """A deterministic split from the clip id (the same clip always lands on the same side)."""
    if eval_fraction <= 0:
        return None
    bucket = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if bucket < eval_fraction else "train"
