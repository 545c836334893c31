"""Runs only on a GPU machine: TensorRT vs ONNX Runtime parity, NVDEC vs PyAV PSNR, end to end.

Engines: the repository's ``engines/`` when trained ones are there, else the tiny test engine.
Tolerances: TensorRT may use TF32 for FP32 layers on Ampere+ GPUs, hence 1e-2 on probabilities
rather than float32 epsilon; integer outputs (votes) must agree on at least 99 % of elements.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest
from gpu_helpers import POLICY, engine_feeds, repository_engines, write_tiny_engine

from stream_tagger.decode import make_decoder
from stream_tagger.engines.repository import EngineInputs
from stream_tagger.engines.runtime import make_runtime, plans, tensorrt_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not tensorrt_available(), reason="needs an NVIDIA GPU with TensorRT and pycuda"),
]

PROB_TOLERANCE = 1e-2
VOTE_AGREEMENT = 0.99


def _engines(tmp_path):
    """Copies of the engines (plans get written beside them) or the tiny engine."""
    found = repository_engines()
    if not found:
        version_dir = tmp_path / "early_action" / "1"
        return [(version_dir, write_tiny_engine(version_dir))]
    copies = []
    for version_dir, manifest in found:
        target = tmp_path / version_dir.parent.name / version_dir.name
        shutil.copytree(version_dir, target, ignore=shutil.ignore_patterns("plans"))
        copies.append((target, manifest))
    return copies


def assert_parity(reference: dict, candidate: dict) -> None:
    assert reference.keys() == candidate.keys()
    for name, expected in reference.items():
        got = candidate[name]
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        if np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_allclose(got, expected, atol=PROB_TOLERANCE, err_msg=name)
        else:
            assert np.mean(got == expected) >= VOTE_AGREEMENT, name


@pytest.mark.parametrize("batch", [1, 5, 32])
def test_tensorrt_matches_onnxruntime_per_engine(tmp_path, batch):
    for version_dir, manifest in _engines(tmp_path):
        feeds = engine_feeds(version_dir, manifest, batch=batch, seed=batch)
        reference = make_runtime("onnxruntime", version_dir, manifest).infer(feeds)
        runtime = make_runtime("tensorrt", version_dir, manifest)
        try:
            assert runtime.backend == "tensorrt"
            assert_parity(reference, runtime.infer(feeds))
        finally:
            runtime.close()
        assert plans.plan_path(version_dir, plans.current_gpu()).exists()


def test_auto_picks_tensorrt_here(tmp_path):
    version_dir, manifest = _engines(tmp_path)[0]
    runtime = make_runtime("auto", version_dir, manifest)
    assert runtime.backend == "tensorrt"
    runtime.close()


def test_a_corrupt_cached_plan_is_rebuilt(tmp_path):
    version_dir, manifest = _engines(tmp_path)[0]
    path = plans.plan_path(version_dir, plans.current_gpu())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a plan")
    runtime = make_runtime("tensorrt", version_dir, manifest)
    assert runtime.infer(engine_feeds(version_dir, manifest, batch=2))
    runtime.close()
    assert path.read_bytes() != b"not a plan"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_nvdec_frames_match_pyav(tiny_video):
    clip = make_decoder("nvdec").decode(str(tiny_video), [POLICY])
    reference = make_decoder("pyav").decode(str(tiny_video), [POLICY])
    assert clip.backend == "nvdec", clip.notes
    for got, expected in zip(clip.frames[POLICY], reference.frames[POLICY]):
        assert _psnr(got, expected) >= 35.0


def test_pipeline_end_to_end_nvdec_then_tensorrt(tmp_path, tiny_video):
    decoder = make_decoder("nvdec")
    for version_dir, manifest in _engines(tmp_path):
        clip = decoder.decode(str(tiny_video), manifest.sampling_policies)
        frames = {p: clip.frames[p][None] for p in manifest.sampling_policies}
        feeds = EngineInputs.load(version_dir, manifest).feeds(frames, ["Breaking: storm hits the coast"])
        runtime = make_runtime("tensorrt", version_dir, manifest)
        outputs = runtime.infer(feeds)
        runtime.close()
        assert clip.backend == "nvdec"
        assert set(outputs) == {spec.name for spec in manifest.outputs}


#: Settings names of the worker (stream_tagger/settings.py, env prefix STREAM_TAGGER_).
WORKER_ENV = {"STREAM_TAGGER_BACKEND": "tensorrt", "STREAM_TAGGER_DECODER": "nvdec"}


@pytest.mark.skipif(importlib.util.find_spec("stream_tagger.cli.main") is None, reason="worker CLI not written yet")
def test_worker_tags_a_file_with_tensorrt(tiny_video, monkeypatch):
    """The worker's own path (`stream-tagger tag`) with backend=tensorrt on the repository engines."""
    if not repository_engines():
        pytest.skip("no trained engines under engines/ yet")
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    command = [sys.executable, "-m", "stream_tagger.cli", "tag", str(tiny_video)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '"nvdec"' in result.stdout  # the record's decode.backend
