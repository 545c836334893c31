"""``stream-tagger-train import csv FILE --out DIR``: a CSV whose columns are named like the manifest fields.

Required columns: ``clip_id``, ``file`` (relative to the CSV's folder, or absolute). Optional: ``title``,
``split``, ``category``, ``tags`` and ``clean_tags`` (separated by ``|``), ``quality``, ``timeliness``,
``early_action``; an empty cell means the row does not carry that field. Other columns are kept as
extra fields of the row (the trainers ignore them).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from trainer.datasets.format import DatasetError, DatasetRow
from trainer.importers.report import ImportReport
from trainer.importers.run import Candidate, add_common_arguments, import_candidates

REQUIRED = ("clip_id", "file")
LIST_FIELDS = ("tags", "clean_tags")
TAG_SEPARATOR = "|"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, help="CSV with a header row of manifest field names")
    add_common_arguments(parser)


def read_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line number, record)]); DatasetError when the file or a required column is missing."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such CSV file")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in header]
        if missing:
            raise DatasetError(f"{path}: missing required column(s) {', '.join(missing)} "
                               f"(the header has: {', '.join(header) or 'nothing'})")
        reader.fieldnames = header
        return header, [(number, record) for number, record in enumerate(reader, 2)]


def candidates(path: Path, report: ImportReport) -> list[Candidate]:
    header, records = read_rows(path, REQUIRED)
    known = set(DatasetRow.model_fields)
    extra = [name for name in header if name not in known]
    if extra:
        print(f"note: columns {', '.join(extra)} are not manifest fields; kept as extra fields of each row")
    found = []
    for number, record in records:
        fields: dict = {}
        for name, value in record.items():
            value = (value or "").strip() if isinstance(value, str) else ""
            if not value or name is None:
                continue
            fields[name] = [t.strip() for t in value.split(TAG_SEPARATOR) if t.strip()] if name in LIST_FIELDS else value
        origin = f"{path.name} line {number}"
        if not fields.get("clip_id") or not fields.get("file"):
            report.skip(origin, fields.get("clip_id"), "invalid_row", "empty clip_id or file")
            continue
        source = Path(fields.pop("file"))
        found.append(Candidate(source if source.is_absolute() else path.parent / source, fields, origin))
    return found


def run(args: argparse.Namespace) -> int:
    report = ImportReport(f"csv {args.csv}")
    return import_candidates(candidates(args.csv, report), args, report.source, report)
