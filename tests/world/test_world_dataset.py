"""The manifest contract, the CLI, and the trainer's frame loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stream_tagger.sampling import SamplingPolicy
from trainer import cli, data
from trainer.data import load_dataset, load_frames
from video_world.labels import CATEGORIES, EARLY_ACTIONS, QUALITY_GRADES, TAG_CATEGORY, TIMELINESS_CLASSES
from video_world.spec import WorldOptions, sample_clip
from video_world.titles import CUE_WORDS

FIELDS = {"clip_id", "file", "category", "tags", "true_tags", "quality", "timeliness", "ttl_hours", "early_action",
          "title", "evidence", "codec", "fps", "frames", "width", "height", "seconds", "seed"}
POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


def test_manifest_rows_carry_every_field_with_valid_labels(tiny_dataset: Path) -> None:
    rows = load_dataset(tiny_dataset)
    assert len(rows) == 8 and [r["clip_id"] for r in rows] == [f"s11-{i:06d}" for i in range(8)]
    for row in rows:
        assert set(row) == FIELDS
        assert (tiny_dataset / row["file"]).is_file()
        assert row["category"] in CATEGORIES and row["quality"] in QUALITY_GRADES
        assert row["timeliness"] in TIMELINESS_CLASSES and row["early_action"] in EARLY_ACTIONS
        assert 2 <= len(row["true_tags"]) <= 3 and {TAG_CATEGORY[t] for t in row["true_tags"]} == {row["category"]}
        assert row["tags"] == row["true_tags"]  # no --tag-noise
        assert set(row["evidence"]) == {"title", "visual"}
        assert (row["width"], row["height"], row["fps"], row["frames"]) == (96, 96, 25, 30)


def test_cli_writes_clips_and_a_manifest_line_per_clip(tmp_path: Path) -> None:
    code = cli.main(["make-dataset", "--out", str(tmp_path), "--clips", "3", "--seed", "4", "--size", "64x48",
                     "--seconds", "0.4", "--codec", "mpeg4", "--tag-noise", "0.3", "--workers", "1"])
    lines = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert code == 0 and len(lines) == 3
    row = json.loads(lines[0])
    assert (row["width"], row["height"], row["codec"], row["frames"]) == (64, 48, "mpeg4", 10)
    assert len(list((tmp_path / "clips").glob("*.mp4"))) == 3


def test_load_frames_decodes_once_then_serves_rows_from_the_cache(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a private copy of the dataset, loaded once
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    rows = load_dataset(copy)
    first = load_frames(copy, POLICY)
    # When decoding is made impossible and rows are asked for again
    monkeypatch.setattr(data, "decode_clips", lambda *a, **k: pytest.fail("decoded again instead of the cache"))
    again = load_frames(copy, POLICY, rows=[rows[5], rows[2]])
    # Then they come from the cache, row by row
    assert first.shape == (8, 8, 64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(again, first[[5, 2]])
    assert np.array_equal(load_frames(copy, POLICY, rows=[1]), first[[1]])
    assert len(list((copy / ".cache").glob("frames-*.npy"))) == 1


def test_a_clip_rendered_again_in_place_invalidates_the_cache(tiny_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    before = load_frames(copy, POLICY)
    rows = load_dataset(copy)
    shutil.copyfile(copy / rows[1]["file"], copy / rows[0]["file"])  # new pixels, same manifest
    after = load_frames(copy, POLICY)
    assert np.array_equal(after[0], before[1]) and not np.array_equal(after[0], before[0])


def test_titles_name_the_class_only_when_they_carry_the_evidence() -> None:
    specs = [sample_clip(2, i, WorldOptions()) for i in range(400)]
    for spec in specs:
        named = {cls for cls, words in CUE_WORDS.items() for ws in words.values() for w in ws if w in spec.title}
        assert named == ({spec.timeliness} if spec.title_evidence else set()), spec.title
    share = lambda t, v: sum((s.title_evidence, s.visual_evidence) == (t, v) for s in specs) / len(specs)
    assert 0.4 < share(True, True) < 0.6 and 0.17 < share(True, False) < 0.33 and 0.17 < share(False, True) < 0.33
    assert share(False, False) == 0
