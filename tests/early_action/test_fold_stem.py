"""Folding the motion stem keeps the early-action engine's outputs and drops its full-resolution preprocessing."""

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from stream_tagger.engines.manifest import MODEL_NAME, EngineManifest
from stream_tagger.engines.repository import load_engine
from trainer import cli
from trainer.early_action.fold import NotAMotionStem, fold_motion_stem

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "engines" / "early_action" / "3"


def test_the_folded_graph_has_a_3_channel_stem_and_no_9_channel_tensor():
    folded = fold_motion_stem(onnx.load(str(COMMITTED / MODEL_NAME)))
    weights = {t.name: t for t in folded.graph.initializer}
    stem = next(node for node in folded.graph.node if node.op_type == "Conv")
    assert list(weights[stem.input[1]].dims)[:2] == [72, 3]
    three_way_concats = [n for n in folded.graph.node if n.op_type == "Concat" and len(n.input) == 3
                         and any(a.name == "axis" and a.i == -1 for a in n.attribute)]
    assert three_way_concats == []


def test_a_graph_without_the_motion_stem_is_refused():
    with pytest.raises(NotAMotionStem):
        fold_motion_stem(onnx.load(str(REPO / "engines" / "classifier" / "3" / MODEL_NAME)))


def test_publish_gives_a_version_with_the_same_outputs(tmp_path):
    shutil.copytree(COMMITTED, tmp_path / "early_action" / "3")
    report = tmp_path / "fold.json"
    assert cli.main(["fold-motion-stem", "--engine", str(tmp_path / "early_action" / "3"), "--json", str(report),
                     "--publish"]) == 0
    published = tmp_path / "early_action" / "4"
    manifest = EngineManifest.load(published)
    assert manifest.training.model_dump()["stem_folded_from"].startswith("early_action/3@")
    assert manifest.metrics["stem_fold"]["identical_votes"] is True
    original, folded = load_engine(COMMITTED, "onnxruntime", 1), load_engine(published, "onnxruntime", 1)
    try:
        policy = original.sampling_policies[0]
        frames = {policy: np.random.default_rng(5).integers(0, 256, (5, policy.frames, policy.height,
                                                                       policy.width, 3), np.uint8)}
        a, b = original.infer(frames, [""] * 5), folded.infer(frames, [""] * 5)
        np.testing.assert_array_equal(a["frame_votes"], b["frame_votes"])
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-4)
        np.testing.assert_allclose(a["action_probs"], b["action_probs"], atol=1e-6)
    finally:
        original.close()
        folded.close()
