"""``stream-tagger-train adopt-decode``: evaluate with another decode setting, publish only if accuracy holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import list_versions, load_engine
from tests.trainer.conftest import ROOT, run_cli
from trainer.adopt_decode import verdict


def _repository(tmp_path: Path) -> Path:
    root = tmp_path / "engines"
    shutil.copytree(ROOT / "engines" / "timeliness" / "1", root / "timeliness" / "1")
    return root


def test_a_setting_that_keeps_the_figures_is_published_as_a_new_version(tmp_path, world_tiny):
    # Given a trained engine and a held-out set
    root = _repository(tmp_path)

    # When the reference-frames setting is adopted within 1 point
    result = run_cli("adopt-decode", "--engine", str(root / "timeliness" / "1"), "--data", str(world_tiny),
                     "--decode", "reference", "--json", str(tmp_path / "adopt.json"), "--publish")

    # Then both evaluations are reported, and version 2 is the same graph declaring the setting
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "adopt.json").read_text())
    assert report["adopted"] and set(report["figures"]) == {"accuracy", "visual_accuracy"}
    assert [n for n, _ in list_versions(root / "timeliness")] == [1, 2]
    old, new = EngineManifest.load(root / "timeliness" / "1"), EngineManifest.load(root / "timeliness" / "2")
    assert new.sha256 == old.sha256
    assert [p.decode for p in new.sampling_policies] == ["reference"]
    assert new.training.decode_adopted_from == old.ref
    assert new.metrics["decode_adoption"]["figures"] == report["figures"]
    load_engine(root / "timeliness" / "2", "onnxruntime").close()  # the worker can serve it


def test_a_setting_that_costs_more_than_allowed_publishes_nothing(tmp_path, world_tiny):
    root = _repository(tmp_path)
    result = run_cli("adopt-decode", "--engine", str(root / "timeliness" / "1"), "--data", str(world_tiny),
                     "--decode", "reference", "--json", str(tmp_path / "adopt.json"), "--publish",
                     "--max-drop", "-1")
    assert result.returncode == 1
    assert not json.loads((tmp_path / "adopt.json").read_text())["adopted"]
    assert [n for n, _ in list_versions(root / "timeliness")] == [1]


def test_the_verdict_judges_every_headline_figure():
    before = {"category_accuracy": 0.95, "tag_map": 0.90, "quality_accuracy": 0.99, "other": 0.5}
    within = verdict("classifier", before, {"category_accuracy": 0.945, "tag_map": 0.90, "quality_accuracy": 1.0}, 0.01)
    beyond = verdict("classifier", before, {"category_accuracy": 0.95, "tag_map": 0.885, "quality_accuracy": 0.99}, 0.01)
    assert within["adopted"] and set(within["figures"]) == {"category_accuracy", "tag_map", "quality_accuracy"}
    assert not beyond["adopted"] and beyond["figures"]["tag_map"]["drop"] == 0.015
