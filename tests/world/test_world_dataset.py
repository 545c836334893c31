"""The world as a producer of the documented dataset format, its CLI, and the trainers' frame cache over it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from stream_tagger.sampling import SamplingPolicy
from trainer import cli
from trainer.datasets import views
from trainer.datasets.format import SCHEMA_PATH, Dataset
from trainer.datasets.views import FramesView, cached_view
from video_world.labels import CATEGORIES, EARLY_ACTIONS, QUALITY_GRADES, TAG_CATEGORY, TIMELINESS_CLASSES
from video_world.spec import WorldOptions, sample_clip
from video_world.titles import CUE_WORDS

FIELDS = {"clip_id", "file", "category", "tags", "clean_tags", "quality", "timeliness", "ttl_hours", "early_action",
          "title", "evidence", "codec", "fps", "frames", "width", "height", "seconds", "seed"}
POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


def load_dataset(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_manifest_rows_carry_every_field_with_valid_labels(tiny_dataset: Path) -> None:
    rows = load_dataset(tiny_dataset)
    assert len(rows) == 8 and [r["clip_id"] for r in rows] == [f"s11-{i:06d}" for i in range(8)]
    for row in rows:
        assert set(row) == FIELDS
        assert (tiny_dataset / row["file"]).is_file()
        assert row["category"] in CATEGORIES and row["quality"] in QUALITY_GRADES
        assert row["timeliness"] in TIMELINESS_CLASSES and row["early_action"] in EARLY_ACTIONS
        assert 2 <= len(row["clean_tags"]) <= 3 and {TAG_CATEGORY[t] for t in row["clean_tags"]} == {row["category"]}
        assert row["tags"] == row["clean_tags"]  # no --tag-noise
        assert set(row["evidence"]) == {"title", "visual"}
        assert (row["width"], row["height"], row["fps"], row["frames"]) == (96, 96, 25, 30)


def test_the_world_writes_the_documented_format(tiny_dataset: Path) -> None:
    # Every row validates against the published JSON Schema, and the taxonomy loads with the world's labels
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in load_dataset(tiny_dataset):
        jsonschema.validate(row, schema)
    dataset = Dataset.load(tiny_dataset)
    taxonomy = dataset.taxonomy
    assert taxonomy is not None and taxonomy.categories == list(CATEGORIES)
    assert taxonomy.quality_grades == list(QUALITY_GRADES) and taxonomy.actions == list(EARLY_ACTIONS)
    assert taxonomy.tag_category == TAG_CATEGORY
    assert [c.name for c in taxonomy.timeliness] == list(TIMELINESS_CLASSES)


def test_cli_writes_clips_and_a_manifest_line_per_clip(tmp_path: Path) -> None:
    code = cli.main(["make-dataset", "--out", str(tmp_path), "--clips", "3", "--seed", "4", "--size", "64x48",
                     "--seconds", "0.4", "--codec", "mpeg4", "--tag-noise", "0.3", "--workers", "1"])
    lines = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert code == 0 and len(lines) == 3
    row = json.loads(lines[0])
    assert (row["width"], row["height"], row["codec"], row["frames"]) == (64, 48, "mpeg4", 10)
    assert len(list((tmp_path / "clips").glob("*.mp4"))) == 3


def test_frames_are_decoded_once_then_served_from_the_cache(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a private copy of the dataset, cached once
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    dataset = Dataset.load(copy)
    first = cached_view(dataset, FramesView(POLICY)).read_many(range(8))
    # When decoding is made impossible and clips are asked for again
    monkeypatch.setattr(views, "decode_clips", lambda *a, **k: pytest.fail("decoded again instead of the cache"))
    again = cached_view(dataset, FramesView(POLICY))
    # Then they come from the cache, clip by clip
    assert first.shape == (8, 8, 64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(again.read_many([5, 2]), first[[5, 2]])
    assert np.array_equal(again.read(1), first[1])


def test_a_clip_rendered_again_in_place_invalidates_the_cache(tiny_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    dataset = Dataset.load(copy)
    before = cached_view(dataset, FramesView(POLICY)).read_many(range(8))
    rows = load_dataset(copy)
    shutil.copyfile(copy / rows[1]["file"], copy / rows[0]["file"])  # new pixels, same manifest
    after = cached_view(dataset, FramesView(POLICY)).read_many(range(8))
    assert np.array_equal(after[0], before[1]) and not np.array_equal(after[0], before[0])


def test_titles_name_the_class_only_when_they_carry_the_evidence() -> None:
    specs = [sample_clip(2, i, WorldOptions()) for i in range(400)]
    for spec in specs:
        named = {cls for cls, words in CUE_WORDS.items() for ws in words.values() for w in ws if w in spec.title}
        assert named == ({spec.timeliness} if spec.title_evidence else set()), spec.title
    share = lambda t, v: sum((s.title_evidence, s.visual_evidence) == (t, v) for s in specs) / len(specs)
    assert 0.4 < share(True, True) < 0.6 and 0.17 < share(True, False) < 0.33 and 0.17 < share(False, True) < 0.33
    assert share(False, False) == 0
