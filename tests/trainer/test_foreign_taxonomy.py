"""Acceptance: a taxonomy that shares nothing with the synthetic world, end to end through the CLIs.

Real photographs (scikit-image's), panned and zoomed and encoded with H.264, in a folder per class:
import → train classifier → evaluate → ``stream-tagger tag``. Three categories, no tags, no quality,
no timeliness or early-action labels: the engine must have the category output only, and the tag
records must carry the new labels and no field of an output the engine does not have.
"""

from __future__ import annotations

import json

from stream_tagger.engines.manifest import EngineManifest
from tests.trainer.conftest import PHOTO_CLASSES, run_cli


def test_import_train_evaluate_and_tag_a_foreign_taxonomy(photo_tree, tmp_path, validate_tag_record):
    dataset, engines = tmp_path / "dataset", tmp_path / "engines"
    # Given the photo clips imported with a held-out split
    imported = run_cli("import", "folders", str(photo_tree), "--out", str(dataset), "--eval-fraction", "0.34")
    assert imported.returncode == 0, imported.stderr
    # When a classifier trains on it (no taxonomy: labels derived from the data) and is evaluated
    trained = run_cli("train", "classifier", "--data", str(dataset), "--out", str(engines), "--student-epochs", "3",
                      "--loader-workers", "1", "--seed", "1")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "no tags in the training rows: the label-teacher stage is skipped" in trained.stdout
    assert "category: 3 labels from the data" in trained.stdout
    evaluated = run_cli("evaluate", "classifier", "--data", str(dataset), "--engine", str(engines / "classifier" / "1"),
                        "--json", str(tmp_path / "eval.json"))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    # Then the engine has exactly the output it was trained for, with the new labels
    manifest = EngineManifest.load(engines / "classifier" / "1")
    assert manifest.output_names == ["category_probs"] and manifest.labels == {"category": sorted(PHOTO_CLASSES)}
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert set(metrics) >= {"category_accuracy", "category_clips"} and "tag_map" not in metrics
    assert 0 < metrics["category_clips"] < 18
    # And `stream-tagger tag` serves it: records carry the new labels and no absent engine's or output's field
    clips = sorted(photo_tree.glob("*/*-0000.mp4"))
    tagged = run_cli("stream-tagger", "tag", *map(str, clips), env={"STREAM_TAGGER_ENGINE_DIR": str(engines)})
    assert tagged.returncode == 0, tagged.stderr[-3000:]
    records = [json.loads(line) for line in tagged.stdout.splitlines()]
    assert len(records) == len(clips) == 3
    for record in records:
        validate_tag_record(record)
        assert record["category"]["label"] in PHOTO_CLASSES
        assert not {"tags", "quality", "timeliness", "early_action"} & set(record)
        assert set(record["engines"]) == {"classifier"}
