"""The fragment quality branch joins the category/tag graph as one engine with two frames-like inputs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from stream_tagger.engines.manifest import MODEL_NAME
from stream_tagger.engines.tiny import FRAGMENTS, write_tiny_engine
from trainer.export import export_onnx
from trainer.quality.compose import attach_quality
from trainer.quality.nets import FragmentQualityStudent, ServingQuality


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_attached_graph_keeps_the_base_heads_and_takes_quality_from_the_fragments(tmp_path):
    # Given a base classifier graph (frames in, its own quality_probs out) and a fragment quality graph
    base = write_tiny_engine(tmp_path / "engines", "classifier") / MODEL_NAME
    torch.manual_seed(0)
    quality = ServingQuality(FragmentQualityStudent(grades=4, feature_size=8)).eval()
    rng = np.random.default_rng(0)
    shape = (FRAGMENTS.frames, FRAGMENTS.height, FRAGMENTS.width, 3)
    export_onnx(quality, {"fragments": rng.integers(0, 256, (2, *shape), dtype=np.uint8)}, ["quality_probs"],
                tmp_path / "quality.onnx")

    # When they are attached
    merged = attach_quality(base, tmp_path / "quality.onnx", tmp_path / "merged.onnx")

    # Then the engine reads frames and fragments, its category/tag outputs are the base's, and
    # quality_probs is the fragment graph's (the base's own quality head is gone)
    session = _session(merged)
    assert [i.name for i in session.get_inputs()] == ["frames", "fragments"]
    assert sorted(o.name for o in session.get_outputs()) == sorted(
        o.name for o in _session(base).get_outputs())
    frames = rng.integers(0, 256, (3, 8, 64, 64, 3), dtype=np.uint8)
    fragments = rng.integers(0, 256, (3, *shape), dtype=np.uint8)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"frames": frames, "fragments": fragments})))
    base_out = dict(zip([o.name for o in _session(base).get_outputs()], _session(base).run(None, {"frames": frames})))
    np.testing.assert_allclose(got["category_probs"], base_out["category_probs"], atol=1e-6)
    with torch.no_grad():
        expected = quality(torch.from_numpy(fragments)).numpy()
    np.testing.assert_allclose(got["quality_probs"], expected, atol=1e-4)
    assert not np.allclose(got["quality_probs"], base_out["quality_probs"], atol=1e-3)
