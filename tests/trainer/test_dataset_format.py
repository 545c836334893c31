"""The dataset format: the committed JSON Schema of a row, and clear errors for broken manifests."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from trainer import cli
from trainer.datasets.format import SCHEMA_PATH, Dataset, DatasetError, row_json_schema
from trainer.datasets.labels import label_set


def test_the_committed_schema_is_the_one_the_code_validates_with():
    assert json.loads(SCHEMA_PATH.read_text()) == row_json_schema()


def test_the_schema_accepts_partial_rows_and_refuses_rows_without_required_fields():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate({"clip_id": "a", "file": "a.mp4", "category": "x", "camera": "extra fields are kept"}, schema)
    for bad in ({"file": "a.mp4"}, {"clip_id": "a"}, {"clip_id": "a", "file": "a.mp4", "split": "test"},
                {"clip_id": "a", "file": "a.mp4", "tags": "one|two"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def write(folder: Path, lines: list[str], taxonomy: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    if taxonomy is not None:
        (folder / "taxonomy.json").write_text(json.dumps(taxonomy))
    return folder


@pytest.mark.parametrize("lines, message", [
    (['{"clip_id": "a", "file": "a.mp4"}', '{"clip_id": "a", "file": "b.mp4"}'], "manifest.jsonl:2: clip_id 'a' repeats line 1"),
    (['{"clip_id": "a", "file": "a.mp4"}', '{"clip_id": "b"}'], "manifest.jsonl:2: file: Field required"),
    (['not json'], "manifest.jsonl:1:"),
])
def test_a_broken_manifest_names_its_line(tmp_path, lines, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(")):
        Dataset.load(write(tmp_path / "d", lines))


def test_a_broken_manifest_is_one_clear_line_from_the_trainer_cli(tmp_path, capsys):
    folder = write(tmp_path / "d", ['{"clip_id": "a", "file": "a.mp4"}', '{"clip_id": "a", "file": "b.mp4"}'])
    code = cli.main(["train", "classifier", "--data", str(folder), "--out", str(tmp_path / "engines")])
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith("stream-tagger-train train classifier: error: ") and "clip_id 'a' repeats line 1" in errors[0]


def test_label_sets_come_from_the_taxonomy_in_its_order_else_from_the_data(tmp_path):
    rows = ['{"clip_id": "a", "file": "a.mp4", "category": "zebra"}',
            '{"clip_id": "b", "file": "b.mp4", "category": "ant", "tags": ["x"]}',
            '{"clip_id": "c", "file": "c.mp4", "category": "zebra"}']
    derived = Dataset.load(write(tmp_path / "derived", rows))
    found = label_set(derived, range(3), "category")
    assert (found.labels, found.source, found.counts) == (["ant", "zebra"], "data", {"zebra": 2, "ant": 1})
    assert label_set(derived, range(3), "quality") is None
    fixed = Dataset.load(write(tmp_path / "fixed", rows, {"categories": ["zebra", "ant", "bee"]}))
    assert label_set(fixed, range(3), "category").labels == ["zebra", "ant", "bee"]
