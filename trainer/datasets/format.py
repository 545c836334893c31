"""The dataset format (docs/datasets.md): a folder with ``manifest.jsonl`` and an optional ``taxonomy.json``.

One row per clip: ``clip_id`` and ``file`` (relative to the folder) are required; ``title``, ``split``
and the label fields are optional, so a row may carry only some labels. Unknown fields are kept
(a producer's extras, e.g. the synthetic world's render options) and ignored by the trainers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MANIFEST_NAME = "manifest.jsonl"
TAXONOMY_NAME = "taxonomy.json"
SCHEMA_PATH = Path(__file__).with_name("manifest_row.schema.json")

#: The label fields of a row, by the family name the engines' manifests use.
LABEL_FIELDS = ("category", "tags", "quality", "timeliness", "early_action")


class DatasetError(Exception):
    """Raised when a dataset folder, its manifest or its taxonomy cannot be used; the message says where."""


class DatasetRow(BaseModel):
    """One clip of ``manifest.jsonl``."""

    model_config = ConfigDict(extra="allow", frozen=True, title="stream-tagger dataset manifest row")

    clip_id: str = Field(min_length=1, description="unique within the dataset")
    file: str = Field(min_length=1, description="the video, relative to the dataset folder")
    title: str | None = Field(default=None, description="the video's title (the timeliness text input)")
    split: Literal["train", "eval"] | None = Field(default=None, description="absent: usable as either")
    category: str | None = None
    tags: list[str] | None = Field(default=None, description="training tags (may be noisy)")
    quality: str | None = None
    timeliness: str | None = None
    early_action: str | None = None
    clean_tags: list[str] | None = Field(default=None, description="verified tags (evaluation truth)")

    def has(self, family: str) -> bool:
        return getattr(self, family) is not None


class TimelinessClass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    ttl_hours: int = Field(ge=0)


class Taxonomy(BaseModel):
    """Label sets and their order; every part is optional (absent: derived from the data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: list[str] | None = None
    tags: list[str] | None = None
    #: best to worst
    quality_grades: list[str] | None = None
    timeliness: list[TimelinessClass] | None = None
    actions: list[str] | None = None
    tag_category: dict[str, str] | None = None

    @field_validator("categories", "tags", "quality_grades", "actions")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("labels must be unique")
        return values

    @model_validator(mode="after")
    def _tag_map_consistent(self) -> Taxonomy:
        if self.tag_category:
            unknown = [t for t in self.tag_category if self.tags is not None and t not in self.tags]
            bad = [c for c in self.tag_category.values() if self.categories is not None and c not in self.categories]
            if unknown or bad:
                raise ValueError(f"tag_category names unknown tags {unknown} or categories {bad}")
        return self

    def labels(self, family: str) -> list[str] | None:
        """The ordered labels of a row field (``category``, ``tags``, ...), or None when not fixed."""
        if family == "timeliness":
            return None if self.timeliness is None else [c.name for c in self.timeliness]
        return {"category": self.categories, "tags": self.tags, "quality": self.quality_grades,
                "early_action": self.actions}[family]

    def ttl_hours(self) -> dict[str, int]:
        return {c.name: c.ttl_hours for c in self.timeliness or []}


@dataclass
class Dataset:
    root: Path
    rows: list[DatasetRow]
    taxonomy: Taxonomy | None

    @classmethod
    def load(cls, root: str | os.PathLike) -> Dataset:
        root = Path(root)
        if not (root / MANIFEST_NAME).is_file():
            raise DatasetError(f"{root}: no {MANIFEST_NAME} (a dataset is a folder with one; see docs/datasets.md)")
        rows = read_manifest(root / MANIFEST_NAME)
        return cls(root, rows, read_taxonomy(root / TAXONOMY_NAME))

    def __len__(self) -> int:
        return len(self.rows)

    def path(self, row: DatasetRow) -> Path:
        return self.root / row.file

    def split_rows(self, split: Literal["train", "eval"]) -> list[int]:
        """Indices of the rows usable for ``split``: those marked so, and those with no split."""
        return [i for i, row in enumerate(self.rows) if row.split in (None, split)]

    def marked(self, split: Literal["train", "eval"]) -> list[int]:
        """Indices of the rows explicitly marked ``split``."""
        return [i for i, row in enumerate(self.rows) if row.split == split]


def read_manifest(path: Path) -> list[DatasetRow]:
    rows, seen = [], {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = DatasetRow.model_validate_json(line)
            except ValidationError as exc:
                raise DatasetError(f"{path}:{number}: {_first_error(exc)}") from None
            if row.clip_id in seen:
                raise DatasetError(f"{path}:{number}: clip_id {row.clip_id!r} repeats line {seen[row.clip_id]}")
            seen[row.clip_id] = number
            rows.append(row)
    return rows


def read_taxonomy(path: Path) -> Taxonomy | None:
    if not path.is_file():
        return None
    try:
        return Taxonomy.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise DatasetError(f"{path}: {_first_error(exc)}") from None


def write_manifest(root: Path, rows: list[dict]) -> Path:
    path = Path(root) / MANIFEST_NAME
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(partial, path)
    return path


def row_json_schema() -> dict:
    """The JSON Schema of a manifest row (committed as ``manifest_row.schema.json``)."""
    schema = DatasetRow.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["additionalProperties"] = True
    return schema


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "row"
    return f"{where}: {error['msg']}" + (f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else "")


def held_out(training: Dataset, eval_dir: str | os.PathLike | None) -> tuple[Dataset, list[int]] | None:
    """The evaluation rows: ``--eval-data``'s rows (split eval or none), else the training dataset's
    rows marked ``split: eval``; None when there are none."""
    if eval_dir is not None:
        dataset = Dataset.load(eval_dir)
        return dataset, dataset.split_rows("eval")
    marked = training.marked("eval")
    return (training, marked) if marked else None
