"""A tiny timeliness model exports to ONNX with the contract's I/O and matches torch under ONNX Runtime."""

import numpy as np
import onnxruntime as ort
import torch

from stream_tagger.engines.repository import describe_graph
from trainer.export import check_parity, export_onnx
from trainer.timeliness.model import TimelinessModel


def test_tiny_model_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    model = TimelinessModel(buckets=64, dim=8).eval()
    rng = np.random.default_rng(0)
    feeds = {"frames": rng.integers(0, 256, (3, 8, 64, 64, 3), dtype=np.uint8),
             "title_ids": rng.integers(0, 64, (3, 32)).astype(np.int64)}
    feeds["title_ids"][1] = 0  # an empty title must not produce NaN
    path = tmp_path / "model.onnx"
    export_onnx(model, feeds, ["timeliness_probs", "visual_probs", "text_probs"], path)
    assert check_parity(model, path, feeds) < 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    one = {name: value[:1] for name, value in feeds.items()}  # dynamic batch axis
    probs = session.run(["timeliness_probs"], one)[0]
    assert probs.shape == (1, 4) and np.isclose(probs.sum(), 1.0, atol=1e-5)
    inputs, outputs = describe_graph(path)
    assert [(s.name, s.dtype, s.shape) for s in inputs] == [("frames", "uint8", ["batch", 8, 64, 64, 3]),
                                                            ("title_ids", "int64", ["batch", 32])]
