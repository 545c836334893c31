"""``stream-tagger-train import``: every candidate kept or skipped with a reason, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.trainer.conftest import PHOTO_CLASSES, run_cli
from trainer.datasets.format import Dataset


def report_of(folder: Path) -> dict:
    return json.loads((folder / "import-report.json").read_text())


def reasons(report: dict) -> dict[str, str]:
    return {row["clip_id"]: row["reason"] for row in report["skipped_rows"]}


def test_folders_keeps_good_clips_and_reports_each_broken_one(photo_tree, tmp_path):
    # Given a category tree with a zero-byte clip, text renamed .mp4, a dangling link and a stray file
    tree = tmp_path / "tree"
    shutil.copytree(photo_tree, tree)
    (tree / "cat" / "empty.mp4").write_bytes(b"")
    (tree / "coffee" / "notes.mp4").write_text("this is text, not a video")
    os.symlink(tree / "nowhere.mp4", tree / "rocket" / "gone.mp4")
    (tree / "rocket" / "readme.txt").write_text("hello")
    # When it is imported
    out = tmp_path / "dataset"
    result = run_cli("import", "folders", str(tree), "--out", str(out), "--eval-fraction", "0.3", "--min-clips", "7")
    # Then the good clips are kept, each broken one has its line and reason, and nothing else is lost
    assert result.returncode == 0, result.stderr
    report = report_of(out)
    assert reasons(report) == {"cat/empty": "empty", "coffee/notes": "undecodable", "rocket/gone": "missing",
                               "rocket/readme": "not_a_video"}
    for clip_id in reasons(report):
        assert clip_id in result.stdout
    assert report["kept"] == 18 and report["class_counts"]["category"] == {c: 6 for c in PHOTO_CLASSES}
    assert report["too_few_clips"] == {"category": {c: 6 for c in PHOTO_CLASSES}}
    assert "fewer than 7 clips" in result.stdout
    dataset = Dataset.load(out)
    assert {row.split for row in dataset.rows} == {"train", "eval"}
    assert all(dataset.path(row).resolve().is_file() and dataset.path(row).is_symlink() for row in dataset.rows)


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_csv_reports_labels_outside_the_taxonomy_duplicates_and_missing_files(photo_tree, tmp_path):
    # Given a CSV beside copies of three clips (relative and absolute paths), a taxonomy and broken rows
    (tmp_path / "videos").mkdir()
    for name in ("a", "b", "c"):
        shutil.copyfile(photo_tree / "cat" / "cat-0000.mp4", tmp_path / "videos" / f"{name}.mp4")
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(json.dumps({"categories": ["pets", "food"], "tags": ["fur", "cup"]}))
    csv_file = write_csv(tmp_path / "clips.csv", "clip_id,file,category,tags,title,camera", [
        "a,videos/a.mp4,pets,fur|cup,First,phone",
        f"b,{tmp_path / 'videos' / 'b.mp4'},food,,Second,dslr",
        "a,videos/c.mp4,pets,,Duplicate id,phone",
        "d,videos/c.mp4,planes,,Category outside the taxonomy,phone",
        "e,videos/c.mp4,pets,fur|wings,Tag outside the taxonomy,phone",
        "f,videos/missing.mp4,pets,,No such file,phone",
        ",videos/c.mp4,pets,,No clip id,phone",
    ])
    # When it is imported with copies
    out = tmp_path / "dataset"
    result = run_cli("import", "csv", str(csv_file), "--out", str(out), "--taxonomy", str(taxonomy), "--mode", "copy")
    # Then a and b are kept with their fields, each other row is skipped with its reason
    assert result.returncode == 0, result.stderr
    report = report_of(out)
    assert {row["reason"] for row in report["skipped_rows"]} == {
        "duplicate_clip_id", "label_outside_taxonomy", "missing", "invalid_row"}
    assert reasons(report) == {"a": "duplicate_clip_id", "d": "label_outside_taxonomy", "e": "label_outside_taxonomy",
                               "f": "missing", None: "invalid_row"}
    dataset = Dataset.load(out)
    assert [(r.clip_id, r.category, r.tags, r.title) for r in dataset.rows] == [
        ("a", "pets", ["fur", "cup"], "First"), ("b", "food", None, "Second")]
    assert dataset.rows[0].model_extra == {"camera": "phone"}
    assert not dataset.path(dataset.rows[0]).is_symlink()  # --mode copy
    assert dataset.taxonomy.categories == ["pets", "food"]


def test_a_csv_without_a_required_column_is_one_clear_error(tmp_path):
    csv_file = write_csv(tmp_path / "clips.csv", "file,category", ["videos/a.mp4,pets"])
    result = run_cli("import", "csv", str(csv_file), "--out", str(tmp_path / "dataset"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing required column(s) clip_id" in result.stderr
    assert not (tmp_path / "dataset" / "manifest.jsonl").exists()


def test_kinetics_names_files_like_the_download_scripts_and_maps_splits(photo_tree, tmp_path):
    # Given two downloaded clips, named <youtube_id>_<start:06d>_<end:06d>.mp4, and one that was never fetched
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copyfile(photo_tree / "cat" / "cat-0000.mp4", videos / "abc_000010_000020.mp4")
    shutil.copyfile(photo_tree / "rocket" / "rocket-0000.mp4", videos / "xyz_000003_000013.mp4")
    annotations = write_csv(tmp_path / "kinetics.csv", "label,youtube_id,time_start,time_end,split", [
        "petting cat,abc,10,20,train", "launching rocket,xyz,3,13,val", "juggling,nop,0,10,train"])
    # When imported
    out = tmp_path / "dataset"
    result = run_cli("import", "kinetics", str(annotations), "--videos", str(videos), "--out", str(out))
    # Then the two present clips are kept with their split, the missing one is reported
    assert result.returncode == 0, result.stderr
    rows = Dataset.load(out).rows
    assert [(r.clip_id, r.category, r.split) for r in rows] == [
        ("abc_000010_000020", "petting cat", "train"), ("xyz_000003_000013", "launching rocket", "eval")]
    assert reasons(report_of(out)) == {"nop_000000_000010": "missing"}
    missing_column = write_csv(tmp_path / "bad.csv", "label,youtube_id,time_start,split", ["a,b,1,train"])
    result = run_cli("import", "kinetics", str(missing_column), "--videos", str(videos), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "time_end" in result.stderr and "Traceback" not in result.stderr
