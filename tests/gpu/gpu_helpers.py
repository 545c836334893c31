"""Helpers of the GPU-path tests: a tiny ONNX engine written per test, feeds for any engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream_tagger.engine_manifest import (
    MEMORY_NAME,
    MODEL_NAME,
    EngineManifest,
    TensorSpec,
    TrainingRecord,
    file_sha256,
)
from stream_tagger.sampling import SamplingPolicy

POLICY = SamplingPolicy(frames=8, height=64, width=64, fraction=0.1, max_seconds=2.0)
REPO_ENGINES = Path(__file__).resolve().parents[2] / "engines"


def _tiny_graph() -> onnx.ModelProto:
    """frames -> per-frame mean colour -> (softmax head, nearest memory reference per frame).

    Covers what the real engines need from a runtime: uint8 input, a dynamic batch axis, a second
    dynamic axis that is not the batch (``refs``), a float output and an int64 output.
    """
    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(24, 6)).astype(np.float32), "w")
    scale = numpy_helper.from_array(np.array(1 / 255, dtype=np.float32), "scale")
    shape = numpy_helper.from_array(np.array([-1, 24], dtype=np.int64), "flat")
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")
    last = numpy_helper.from_array(np.array([3], dtype=np.int64), "axis3")
    nodes = [
        helper.make_node("Cast", ["frames"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m255"], axes=[2, 3], keepdims=0),
        helper.make_node("Mul", ["m255", "scale"], ["m"]),
        helper.make_node("Reshape", ["m", "flat"], ["flat_m"]),
        helper.make_node("MatMul", ["flat_m", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["category_probs"], axis=1),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m4"]),
        helper.make_node("Sub", ["m4", "memory_refs"], ["delta"]),
        helper.make_node("Mul", ["delta", "delta"], ["squared"]),
        helper.make_node("ReduceSum", ["squared", "axis3"], ["distances"], keepdims=0),
        helper.make_node("ArgMin", ["distances"], ["frame_votes"], axis=2, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("frames", TensorProto.UINT8, ["batch", 8, 64, 64, 3]),
            helper.make_tensor_value_info("memory_refs", TensorProto.FLOAT, ["refs", 3]),
        ],
        [
            helper.make_tensor_value_info("category_probs", TensorProto.FLOAT, ["batch", 6]),
            helper.make_tensor_value_info("frame_votes", TensorProto.INT64, ["batch", 8]),
        ],
        initializer=[weights, scale, shape, axes, last],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_tiny_engine(version_dir: Path) -> EngineManifest:
    version_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(_tiny_graph(), version_dir / MODEL_NAME)
    np.savez(
        version_dir / MEMORY_NAME,
        refs=np.random.default_rng(1).random((10, 3), dtype=np.float32),
        labels=np.arange(10, dtype=np.int64) % 6,
    )
    manifest = EngineManifest(
        engine="early_action",
        version=int(version_dir.name),
        inputs=[
            TensorSpec(name="frames", dtype="uint8", shape=["batch", 8, 64, 64, 3]),
            TensorSpec(name="memory_refs", dtype="float32", shape=["refs", 3]),
        ],
        outputs=[
            TensorSpec(name="category_probs", dtype="float32", shape=["batch", 6]),
            TensorSpec(name="frame_votes", dtype="int64", shape=["batch", 8]),
        ],
        labels={
            "early_action": ["keep_straight", "turn_left", "turn_right", "lane_change", "u_turn", "stop"]
        },
        sampling=POLICY,
        training=TrainingRecord(command="tests/gpu tiny graph", seed=0, data_hash="none"),
        sha256={MODEL_NAME: file_sha256(version_dir / MODEL_NAME)},
    )
    manifest.write(version_dir)
    return manifest


def tiny_feeds(batch: int, refs: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 256, size=(batch, 8, 64, 64, 3), dtype=np.uint8),
        "memory_refs": rng.random((refs, 3), dtype=np.float32),
    }


def engine_feeds(
    version_dir: Path, manifest: EngineManifest, batch: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Feeds for any engine of the repository (real ones use the contract's tokenizer and memory bank)."""
    names = {spec.name for spec in manifest.inputs}
    if names == {"frames", "memory_refs"} and manifest.training.data_hash == "none":
        return tiny_feeds(batch, seed=seed)
    rng = np.random.default_rng(seed)
    policy = manifest.sampling
    feeds = {
        "frames": rng.integers(
            0, 256, size=(batch, policy.frames, policy.height, policy.width, 3), dtype=np.uint8
        )
    }
    if "title_ids" in names:
        from stream_tagger.text import HashedTokenizer

        tokenizer = HashedTokenizer.from_config(manifest.serving["tokenizer"])
        titles = ["Breaking: storm hits the coast", "How to bake bread", "Live: match day", "今日のニュース"]
        feeds["title_ids"] = np.stack([tokenizer.encode(titles[i % len(titles)]) for i in range(batch)])
    if "memory_refs" in names:
        from stream_tagger.memory_bank import MemoryBank

        feeds.update(MemoryBank.load(version_dir / MEMORY_NAME).feeds())
    return feeds


def repository_engines() -> list[tuple[Path, EngineManifest]]:
    """The newest version of each engine under the repository's ``engines/`` (empty before training)."""
    found = []
    for engine_dir in sorted(p for p in REPO_ENGINES.glob("*") if p.is_dir()):
        versions = [p for p in engine_dir.iterdir() if p.name.isdigit() and (p / MODEL_NAME).exists()]
        if versions:
            newest = max(versions, key=lambda p: int(p.name))
            found.append((newest, EngineManifest.load(newest)))
    return found
