"""Backend choice on a machine without TensorRT: auto falls back to ONNX Runtime and says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gpu_helpers import engine_feeds

from stream_tagger.engines.runtime import make_runtime, tensorrt_available
from stream_tagger.engines.runtime.tensorrt import gpu_ready
from stream_tagger.errors import ConfigError

needs_no_gpu = pytest.mark.skipif(tensorrt_available(), reason="this machine has TensorRT and a GPU")


def test_gpu_modules_import_without_tensorrt():
    import stream_tagger.decode.nvdec
    import stream_tagger.engines.runtime.plans
    import stream_tagger.engines.runtime.tensorrt  # noqa: F401
    import trainer.build_engines  # noqa: F401


@needs_no_gpu
def test_gpu_ready_is_false_without_tensorrt():
    assert gpu_ready() is False
    assert tensorrt_available() is False


@needs_no_gpu
def test_auto_falls_back_to_onnxruntime_and_logs_it(tiny_engine, caplog):
    version_dir, manifest = tiny_engine
    # When
    with caplog.at_level(logging.INFO, logger="stream_tagger.engines.runtime"):
        runtime = make_runtime("auto", version_dir, manifest)
    # Then the ONNX Runtime backend serves, and the log says which backend auto chose
    try:
        assert runtime.backend == "onnxruntime"
        assert any("onnxruntime" in r.getMessage() and manifest.ref in r.getMessage() for r in caplog.records)
        outputs = runtime.infer(engine_feeds(version_dir, manifest, batch=3))
        assert outputs["action_probs"].shape == (3, 6)
        np.testing.assert_allclose(outputs["action_probs"].sum(axis=1), 1.0, rtol=1e-5)
        assert outputs["frame_votes"].dtype == np.int64 and outputs["frame_votes"].shape == (3, 8)
    finally:
        runtime.close()


@needs_no_gpu
def test_explicit_tensorrt_without_gpu_is_a_config_error(tiny_engine):
    version_dir, manifest = tiny_engine
    with pytest.raises(ConfigError, match="tensorrt"):
        make_runtime("tensorrt", version_dir, manifest)
