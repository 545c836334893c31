"""The engine repository serves the highest version of each engine and hot-reloads new version dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_engines import write_engine, write_engine_repository

from stream_tagger.engines import EngineRepository, version_dirs
from stream_tagger.errors import ConfigError
from stream_tagger.metrics import Metrics


@pytest.fixture
def repo_dir(tmp_path) -> Path:
    return write_engine_repository(tmp_path / "engines")


def _repository(root: Path, metrics: Metrics | None = None) -> EngineRepository:
    def show(new, old):
        if metrics is not None:
            metrics.show_engine(
                new.name, new.manifest.version, new.runtime.backend, old.manifest.version if old else None
            )

    return EngineRepository(root, "onnxruntime", threads=1, on_change=show)


def test_highest_version_of_each_engine_is_served(repo_dir):
    write_engine(repo_dir, "classifier", version=3, seed=3)
    write_engine(repo_dir, "classifier", version=2, seed=2)
    (repo_dir / "classifier" / "10").mkdir()  # no manifest/model yet: an incomplete copy is never served

    served = _repository(repo_dir).load()

    assert served["classifier"].manifest.version == 3
    assert served["classifier"].ref.startswith("classifier/3@sha256:")
    assert [n for n, _ in version_dirs(repo_dir / "classifier")] == [1, 2, 3]


def test_missing_engine_is_a_config_error(repo_dir):
    shutil.rmtree(repo_dir / "timeliness")
    with pytest.raises(ConfigError, match="timeliness"):
        _repository(repo_dir).load()


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
    write_engine(repo_dir, "early_action", version=2, seed=5)
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


def test_broken_new_version_keeps_the_old_one_serving(repo_dir):
    repository = _repository(repo_dir)
    repository.load()
    broken = write_engine(repo_dir, "classifier", version=2)
    (broken / "model.onnx").write_bytes(b"garbage")

    repository.scan_once()

    assert repository.swap_parked() == []
    assert repository.served["classifier"].manifest.version == 1

    # When the copy completes (the files change), the next scan loads it
    write_engine(repo_dir, "classifier", version=2)
    repository.scan_once()
    assert repository.swap_parked() == ["classifier"]
    repository.close()
