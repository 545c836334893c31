"""``--encoder FILE.onnx``: features cached once per clip, heads trained in torch, one merged ONNX graph served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.repository import load_engine
from tests.trainer.conftest import run_cli

SIZE, DIM = 32, 16


class TinyImageEncoder(nn.Module):
    """A stand-in for a pretrained image tower: [N, 3, 32, 32] → [N, 16]."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                    nn.Flatten(), nn.Linear(8, DIM))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels)


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory) -> Path:
    """Exported here, by the test, to the documented contract, with its sidecar."""
    path = tmp_path_factory.mktemp("encoder") / "tiny_tower.onnx"
    torch.manual_seed(0)
    torch.onnx.export(TinyImageEncoder().eval(), (torch.zeros(2, 3, SIZE, SIZE),), str(path), input_names=["pixels"],
                      output_names=["embedding"], dynamic_axes={"pixels": {0: "n"}, "embedding": {0: "n"}},
                      opset_version=17, dynamo=False)
    path.with_suffix(".json").write_text(json.dumps({"input_size": [SIZE, SIZE], "mean": [0.485, 0.456, 0.406],
                                                     "std": [0.229, 0.224, 0.225]}))
    return path


@pytest.mark.parametrize("engine, budget", [
    ("classifier", ["--teacher-epochs", "1", "--quality-epochs", "1", "--student-epochs", "2"]),
    ("timeliness", ["--epochs", "1"]),
    ("early_action", ["--aux-epochs", "1", "--memory-epochs", "1"]),
])
def test_an_engine_on_a_pretrained_encoder_is_one_graph_from_frames(world_tiny, encoder_file, tmp_path, engine, budget):
    # When an engine trains on the encoder's features
    out = tmp_path / "engines"
    result = run_cli("train", engine, "--data", str(world_tiny), "--eval-data", str(world_tiny), "--out", str(out),
                     "--encoder", str(encoder_file), "--loader-workers", "1", "--checkpoint-dir", str(tmp_path / "ck"),
                     *budget)
    assert result.returncode == 0, result.stderr[-3000:]
    version = out / engine / "1"
    manifest = EngineManifest.load(version)
    # Then the published model is one ONNX graph that takes frames at the encoder's size, and holds the encoder
    frames = [spec for spec in manifest.inputs if spec.feed.kind == "frames"]
    assert [(s.name, s.dtype, s.shape[1:]) for s in frames] == [("frames", "uint8", [manifest.sampling_policies[0].frames,
                                                                                     SIZE, SIZE, 3])]
    graph = onnx.load(str(version / "model.onnx")).graph
    assert "encoder_features" not in {i.name for i in graph.input}
    assert any(node.name.startswith("encoder/") for node in graph.node)
    assert manifest.training.model_extra["encoder"]["dim"] == DIM
    parity = manifest.metrics.get("parity_max_abs", manifest.metrics.get("ort_parity_max_abs_diff"))
    assert parity is not None and parity <= 1e-4  # merged graph == encoder under ORT → heads in torch
    # and the features were cached once per clip as [T, D] float32 (no pixels kept)
    shards = list((world_tiny / ".cache").glob("features-*/shard-*.npy"))
    assert shards and all(np.load(s, mmap_mode="r").shape[1:] == (manifest.sampling_policies[0].frames, DIM)
                          for s in shards)
    # and the worker's runtime serves it: the probe checks every output against the manifest
    served = load_engine(version, "onnxruntime")
    served.probe()
    served.close()
