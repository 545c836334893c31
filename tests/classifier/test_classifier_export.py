import json

import numpy as np
import pytest

from stream_tagger.aggregation import AggregationRule
from stream_tagger.engines.manifest import MODEL_NAME, EngineManifest, FramesFeed, TrainingRecord, file_sha256
from stream_tagger.engines.repository import publish_version
from stream_tagger.engines.runtime import make_runtime
from tests.classifier.conftest import CATEGORIES, GRADES, TAGS
from trainer.classifier.clips import POLICY
from trainer.classifier.nets import Student
from trainer.classifier.serving import OUTPUT_NAMES, PREPROCESSING, export_classifier
from trainer.classifier.train import DEFAULT_AGGREGATION


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / MODEL_NAME
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    return path, export_classifier(student, path, POLICY, seed=1)


def publish(root, path):
    return publish_version(root, "classifier", {MODEL_NAME: path}, **manifest_fields())


def manifest_fields() -> dict:
    return {"feeds": {"frames": FramesFeed(sampling=POLICY)}, "preprocessing": PREPROCESSING,
            "labels": {"category": ["c"] * CATEGORIES, "tags": ["t"] * TAGS, "quality": ["q"] * GRADES},
            "serving": {"aggregation": DEFAULT_AGGREGATION},
            "training": TrainingRecord(command="stream-tagger-train train classifier", seed=1, data_hash="sha256:x")}


def test_parity_at_batch_1_and_16_is_asserted_and_small(tiny_onnx):
    _, worst = tiny_onnx
    assert worst <= 1e-4


def test_engine_version_has_valid_manifest_with_sha256_and_next_number(tiny_onnx, tmp_path):
    path, _ = tiny_onnx
    first = publish(tmp_path, path)
    second = publish(tmp_path, path)
    assert (first.name, second.name) == ("1", "2")
    manifest = EngineManifest.load(second)
    assert manifest.version == 2 and manifest.sha256[MODEL_NAME] == file_sha256(second / MODEL_NAME)
    assert manifest.sampling_policies == [POLICY] and [o.name for o in manifest.outputs] == OUTPUT_NAMES
    AggregationRule(**manifest.serving["aggregation"])
    assert not [p for p in tmp_path.joinpath("classifier").iterdir() if p.name.startswith(".staging")]


def test_manifest_schema_rejects_unknown_fields(tiny_onnx, tmp_path):
    path, _ = tiny_onnx
    version = publish(tmp_path, path)
    raw = json.loads((version / "manifest.json").read_text())
    raw["surprise"] = 1
    with pytest.raises(ValueError):
        EngineManifest.model_validate(raw)


def test_exported_engine_serves_through_the_worker_runtime(tiny_onnx, tmp_path):
    path, _ = tiny_onnx
    version = publish(tmp_path, path)
    runtime = make_runtime("onnxruntime", version, EngineManifest.load(version))
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 64, 64, 3), dtype=np.uint8)
    out = runtime.infer({"frames": frames})
    runtime.close()
    assert out["category_probs"].shape == (3, CATEGORIES) and out["frame_tag_probs"].shape == (3, 8, TAGS)
    assert np.allclose(out["quality_probs"].sum(axis=1), 1.0, atol=1e-5)
