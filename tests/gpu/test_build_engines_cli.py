"""build-engines on a machine without TensorRT: a clear error; its pure helpers work on CPU."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_helpers import engine_feeds, write_tiny_engine

from stream_tagger.engines.repository import EngineInputs
from stream_tagger.engines.runtime import make_runtime, tensorrt_available
from trainer import build_engines
from trainer.cli import main

needs_no_gpu = pytest.mark.skipif(tensorrt_available(), reason="this machine has TensorRT and a GPU")


@needs_no_gpu
def test_cli_errors_clearly_without_tensorrt(tmp_path, capsys):
    write_tiny_engine(tmp_path / "engines" / "early_action" / "1")
    code = main(["build-engines", "--engines", str(tmp_path / "engines"), "--fp16-tolerance", "0.02"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TensorRT" in err and "GPU" in err
    assert not (tmp_path / "engines" / "early_action" / "1" / "plans").exists()


def test_version_dirs_lists_versions_with_model_and_manifest(tmp_path):
    engines = tmp_path / "engines"
    write_tiny_engine(engines / "early_action" / "1")
    write_tiny_engine(engines / "early_action" / "10")
    (engines / "classifier" / "1").mkdir(parents=True)  # no model: skipped
    found = build_engines.version_dirs(engines)
    assert [p.name for p in found] == ["1", "10"]


def test_output_gaps_measure_floats_and_votes():
    reference = {"probs": np.array([[0.5, 0.5]], np.float32), "votes": np.array([[1, 2, 3, 4]])}
    candidate = {"probs": np.array([[0.49, 0.51]], np.float32), "votes": np.array([[1, 2, 0, 4]])}
    gaps = build_engines.output_gaps(reference, candidate)
    assert gaps["probs"] == pytest.approx(0.01, abs=1e-6)
    assert gaps["votes"] == pytest.approx(0.25)


def test_batched_inference_matches_one_call(tmp_path):
    # Given the tiny engine on ONNX Runtime and 7 clips
    version_dir = tmp_path / "engines" / "early_action" / "1"
    manifest = write_tiny_engine(version_dir)
    runtime = make_runtime("onnxruntime", version_dir, manifest)
    feeds = engine_feeds(version_dir, manifest, batch=7)
    # When run in batches of 3 (the memory bank, a constant, shared by every batch)
    chunked = build_engines.batched(runtime.infer, EngineInputs.load(version_dir, manifest), feeds, max_batch=3)
    # Then the outputs equal one batch of 7
    whole = runtime.infer(feeds)
    for name in whole:
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-6)
