"""The engine repository: listing, atomic immutable publishing, probing, and a served set that follows it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from stream_tagger.engines.manifest import MANIFEST_NAME, MODEL_NAME, EngineManifest
from stream_tagger.engines.record_fields import record_fields
from stream_tagger.engines.repository import (
    EngineRepository,
    VersionExists,
    list_versions,
    publish_version,
    retire_version,
)
from stream_tagger.engines.tiny import write_tiny_engine, write_tiny_repository
from stream_tagger.errors import ConfigError
from stream_tagger.metrics import Metrics

REPO_ENGINES = Path(__file__).resolve().parents[2] / "engines"


@pytest.fixture
def repo_dir(tmp_path) -> Path:
    return write_tiny_repository(tmp_path / "engines")


def _repository(root: Path, metrics: Metrics | None = None) -> EngineRepository:
    def show(new, old):
        if metrics is not None:
            metrics.show_engine(
                new.name, new.manifest.version, new.runtime.backend, old.manifest.version if old else None
            )

    return EngineRepository(root, "onnxruntime", threads=1, on_change=show, check=record_fields)


def _republish(root: Path, engine: str, source: Path, **changes) -> Path:
    """Publish the files of ``source`` again as a new version, with manifest fields changed."""
    manifest = EngineManifest.load(source)
    files = {name: source / name for name in manifest.sha256}
    fields = {
        "feeds": {spec.name: spec.feed for spec in manifest.inputs},
        "labels": manifest.labels,
        "training": manifest.training,
        "serving": manifest.serving,
        **changes,
    }
    return publish_version(root, engine, files, **fields)


def test_highest_version_of_each_engine_is_served(repo_dir):
    write_tiny_engine(repo_dir, "classifier", version=3, seed=3)
    write_tiny_engine(repo_dir, "classifier", version=2, seed=2)
    (repo_dir / "classifier" / "10").mkdir()  # no manifest/model yet: an incomplete copy is never served

    served = _repository(repo_dir).load()

    assert served["classifier"].manifest.version == 3
    assert served["classifier"].ref.startswith("classifier/3@sha256:")
    assert [n for n, _ in list_versions(repo_dir / "classifier")] == [1, 2, 3]


def test_publishing_is_immutable_and_numbers_are_never_reused(repo_dir):
    source = repo_dir / "classifier" / "1"
    with pytest.raises(VersionExists):
        _republish(repo_dir, "classifier", source, version=1)
    second = _republish(repo_dir, "classifier", source)
    assert second.name == "2"
    retire_version(repo_dir, "classifier")
    assert _republish(repo_dir, "classifier", source).name == "3"  # 2 is retired, not free
    assert not [p for p in (repo_dir / "classifier").iterdir() if p.name.startswith(".staging-")]


def test_a_publish_that_fails_leaves_nothing_behind(repo_dir):
    with pytest.raises(ConfigError, match="no feed"):
        publish_version(
            repo_dir, "classifier", {MODEL_NAME: repo_dir / "classifier" / "1" / MODEL_NAME},
            feeds={}, labels={}, training={"command": "t", "seed": 0, "data_hash": "none"},
        )
    assert sorted(p.name for p in (repo_dir / "classifier").iterdir()) == [".publish.lock", "1"]


def test_committed_schema_1_manifests_load_through_the_typed_model():
    for name in ("classifier", "timeliness", "early_action"):
        versions = list_versions(REPO_ENGINES / name)
        raw = json.loads((versions[0][1] / MANIFEST_NAME).read_text())
        if raw.get("schema_version") != 1:
            continue
        manifest = EngineManifest.load(versions[0][1])
        assert manifest.schema_version == 2
        assert manifest.sampling_policies, name
        assert len(manifest.preprocessing.mean) == 3
        expected = {"frames": "frames", "title_ids": "title", "memory_refs": "constant", "memory_labels": "constant"}
        assert {spec.name: spec.feed.kind for spec in manifest.inputs} == {
            spec.name: expected[spec.name] for spec in manifest.inputs
        }


def test_an_empty_repository_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no engine version"):
        _repository(tmp_path).load()


def test_an_absent_engine_is_simply_not_served(repo_dir):
    shutil.rmtree(repo_dir / "timeliness")
    served = _repository(repo_dir).load()
    assert sorted(served) == ["classifier", "early_action"]


def test_tampered_model_is_refused(repo_dir):
    with (repo_dir / "classifier" / "1" / "model.onnx").open("ab") as model:
        model.write(b"\0")
    with pytest.raises(ConfigError, match="sha256"):
        _repository(repo_dir).load()


def test_new_version_is_loaded_in_the_background_and_swapped_between_batches(repo_dir):
    # Given a repository serving version 1
    metrics = Metrics()
    repository = _repository(repo_dir, metrics)
    repository.load()

    # When version 2 of early_action appears and the watcher scans
    write_tiny_engine(repo_dir, "early_action", version=2, seed=5)
    repository.scan_once()

    # Then it is parked, not served, until the swap point
    assert repository.served["early_action"].manifest.version == 1
    assert repository.swap_parked() == ["early_action"]
    assert repository.served["early_action"].manifest.version == 2
    assert repository.swap_parked() == []

    # And engine_info shows only the served version; the reload is counted
    scrape = metrics.exposition().decode()
    assert 'stream_tagger_engine_info{backend="onnxruntime",engine="early_action",version="2"} 1.0' in scrape
    assert 'engine="early_action",version="1"' not in scrape
    assert "stream_tagger_engine_reloads_total 1.0" in scrape
    repository.close()


def test_broken_new_version_keeps_the_old_one_serving_until_its_files_change(repo_dir):
    repository = _repository(repo_dir)
    repository.load()
    version = write_tiny_engine(repo_dir, "classifier", version=2)
    good = (version / "model.onnx").read_bytes()
    (version / "model.onnx").write_bytes(b"garbage")

    repository.scan_once()
    assert repository.swap_parked() == []
    assert repository.served["classifier"].manifest.version == 1

    # When the copy completes (the files change), the next scan loads it
    time.sleep(0.01)
    (version / "model.onnx").write_bytes(good)
    repository.scan_once()
    assert repository.swap_parked() == ["classifier"]
    repository.close()


def test_a_version_whose_graph_disagrees_with_its_manifest_is_never_served(repo_dir):
    # Given a new classifier version whose manifest lists 5 categories for a 6-wide output
    repository = _repository(repo_dir)
    repository.load()
    labels = EngineManifest.load(repo_dir / "classifier" / "1").labels
    _republish(repo_dir, "classifier", repo_dir / "classifier" / "1",
               labels={**labels, "category": labels["category"][:5]})

    # When the watcher scans, the probe refuses it and version 1 keeps serving
    repository.scan_once()
    assert repository.swap_parked() == []
    assert repository.served["classifier"].manifest.version == 1
    repository.close()


def test_served_set_follows_deletions_and_rollbacks(repo_dir):
    write_tiny_engine(repo_dir, "classifier", version=2, seed=2)
    write_tiny_engine(repo_dir, "classifier", version=3, seed=3)
    repository = _repository(repo_dir)
    repository.load()
    assert repository.served["classifier"].manifest.version == 3

    retire_version(repo_dir, "classifier")  # what `stream-tagger engines rollback classifier` does
    repository.scan_once()
    repository.swap_parked()
    assert repository.served["classifier"].manifest.version == 2

    shutil.rmtree(repo_dir / "classifier" / "2")  # an operator deletes the folder outright
    repository.scan_once()
    repository.swap_parked()
    assert repository.served["classifier"].manifest.version == 1

    with pytest.raises(ConfigError, match="rollback needs an older one"):
        retire_version(repo_dir, "classifier")
    repository.close()


def test_the_watcher_survives_any_error_in_a_scan(repo_dir):
    # Given a watcher scanning every 50 ms and a version folder holding a dangling symlink
    errors: list[Exception] = []
    repository = _repository(repo_dir)
    repository.load()
    broken = repo_dir / "classifier" / "2"
    broken.mkdir()
    (broken / "model.onnx").symlink_to(broken / "nowhere")
    (broken / MANIFEST_NAME).write_text("{}")
    original_scan = repository.scan_once
    calls = {"n": 0}

    def flaky_scan() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("the volume went away for a moment")
        original_scan()

    repository.scan_once = flaky_scan
    repository.start_watching(0.05, on_scan_error=errors.append)

    # When a good version appears after both faults
    write_tiny_engine(repo_dir, "classifier", version=3, seed=3)

    # Then the watcher is still alive and serves it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not repository.swap_parked():
        time.sleep(0.05)
    assert repository.served["classifier"].manifest.version == 3
    assert len(errors) == 1 and isinstance(errors[0], OSError)
    repository.close()
