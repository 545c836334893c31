"""Tiny ONNX engines that follow the brief's contracts (inputs, outputs, labels, manifests), via onnx.helper.

They compute cheap functions of the mean pixel, so the worker's plumbing can be tested without trained
models. ``write_engine_repository(root)`` writes engines/<engine>/1/ for all three engines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream_tagger.engine_manifest import MEMORY_NAME, MODEL_NAME, EngineManifest, file_sha256
from stream_tagger.sampling import SamplingPolicy
from trainer.world.labels import (
    CATEGORIES,
    EARLY_ACTIONS,
    QUALITY_GRADES,
    TAGS,
    TIMELINESS_CLASSES,
    TIMELINESS_TTL_HOURS,
)

T, H, W, DIM, REFS = 8, 64, 64, 4, 12
SECONDS = SamplingPolicy(frames=T, height=H, width=W, seconds=1.0, max_seconds=2.0)
FRACTION = SamplingPolicy(frames=T, height=H, width=W, fraction=0.1, max_seconds=2.0)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def _frame_means() -> list[onnx.NodeProto]:
    """frames uint8 [b,T,H,W,3] -> frame_mean float [b,T,1] in [0,1]."""
    return [
        helper.make_node("Cast", ["frames"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["frame_mean"], axes=[2, 3, 4], keepdims=0),
        helper.make_node("Div", ["frame_mean", "c255"], ["frame_mean01"]),
        helper.make_node("Unsqueeze", ["frame_mean01", "axis_last"], ["frame_col"]),
    ]


def _common_inits() -> list[onnx.TensorProto]:
    return [_const("c255", np.array(255.0, np.float32)), _const("axis_last", np.array([2], np.int64))]


def _head(
    prefix: str, source: str, width: int, rng: np.random.Generator, op: str = "Softmax"
) -> tuple[list, list]:
    """source [b,1] -> op(source @ W + b) [b,width]."""
    weight = rng.normal(0, 4, (1, width)).astype(np.float32)
    bias = rng.normal(0, 1, (width,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", [source, f"{prefix}_w"], [f"{prefix}_mm"]),
        helper.make_node("Add", [f"{prefix}_mm", f"{prefix}_b"], [f"{prefix}_logits"]),
        helper.make_node(op, [f"{prefix}_logits"], [prefix], **({"axis": -1} if op == "Softmax" else {})),
    ]
    return nodes, [_const(f"{prefix}_w", weight), _const(f"{prefix}_b", bias)]


def _tensor(name: str, dtype: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


FRAMES = _tensor("frames", TensorProto.UINT8, ["batch", T, H, W, 3])


def classifier_graph(rng: np.random.Generator) -> onnx.GraphProto:
    nodes, inits = _frame_means(), _common_inits()
    nodes.append(helper.make_node("ReduceMean", ["frame_col"], ["clip_mean"], axes=[1], keepdims=0))
    for name, width, source, op in (
        ("category_probs", 6, "clip_mean", "Softmax"),
        ("quality_probs", 4, "clip_mean", "Softmax"),
        ("tag_probs", 24, "clip_mean", "Sigmoid"),
        ("frame_tag_probs", 24, "frame_col", "Sigmoid"),
    ):
        head_nodes, head_inits = _head(name, source, width, rng, op)
        nodes += head_nodes
        inits += head_inits
    outputs = [
        _tensor("category_probs", TensorProto.FLOAT, ["batch", 6]),
        _tensor("tag_probs", TensorProto.FLOAT, ["batch", 24]),
        _tensor("frame_tag_probs", TensorProto.FLOAT, ["batch", T, 24]),
        _tensor("quality_probs", TensorProto.FLOAT, ["batch", 4]),
    ]
    return helper.make_graph(nodes, "classifier", [FRAMES], outputs, inits)


def timeliness_graph(rng: np.random.Generator) -> onnx.GraphProto:
    nodes, inits = _frame_means(), _common_inits()
    nodes += [
        helper.make_node("ReduceMean", ["frame_col"], ["clip_mean"], axes=[1], keepdims=0),
        helper.make_node("Cast", ["title_ids"], ["title_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["title_f"], ["title_mean"], axes=[1], keepdims=1),
        helper.make_node("Mod", ["title_mean", "c1"], ["title_frac"], fmod=1),
        helper.make_node("Add", ["clip_mean", "title_frac"], ["fused"]),
    ]
    inits.append(_const("c1", np.array(1.0, np.float32)))
    for name, source in (
        ("timeliness_probs", "fused"),
        ("visual_probs", "clip_mean"),
        ("text_probs", "title_frac"),
    ):
        head_nodes, head_inits = _head(name, source, 4, rng)
        nodes += head_nodes
        inits += head_inits
    inputs = [FRAMES, _tensor("title_ids", TensorProto.INT64, ["batch", 32])]
    outputs = [
        _tensor(n, TensorProto.FLOAT, ["batch", 4])
        for n in ("timeliness_probs", "visual_probs", "text_probs")
    ]
    return helper.make_graph(nodes, "timeliness", inputs, outputs, inits)


def early_action_graph(rng: np.random.Generator) -> onnx.GraphProto:
    nodes, inits = _frame_means(), _common_inits()
    nodes += [
        helper.make_node("MatMul", ["frame_col", "feat_w"], ["features"]),  # [b,T,dim]
        helper.make_node("Transpose", ["memory_refs"], ["refs_t"], perm=[1, 0]),  # [dim,refs]
        helper.make_node("MatMul", ["features", "refs_t"], ["similarity"]),  # [b,T,refs]
        helper.make_node("ArgMax", ["similarity"], ["nearest"], axis=2, keepdims=0),  # [b,T]
        helper.make_node("Gather", ["memory_labels", "nearest"], ["frame_votes"]),  # [b,T] int64
        helper.make_node("OneHot", ["frame_votes", "depth", "onoff"], ["onehot"], axis=-1),
        helper.make_node("ReduceMean", ["onehot"], ["action_probs"], axes=[1], keepdims=0),
    ]
    inits += [
        _const("feat_w", rng.normal(0, 1, (1, DIM)).astype(np.float32)),
        _const("depth", np.array(6, np.int64)),
        _const("onoff", np.array([0.0, 1.0], np.float32)),
    ]
    inputs = [
        FRAMES,
        _tensor("memory_refs", TensorProto.FLOAT, ["refs", DIM]),
        _tensor("memory_labels", TensorProto.INT64, ["refs"]),
    ]
    outputs = [
        _tensor("action_probs", TensorProto.FLOAT, ["batch", 6]),
        _tensor("frame_votes", TensorProto.INT64, ["batch", T]),
        _tensor("features", TensorProto.FLOAT, ["batch", T, DIM]),
    ]
    return helper.make_graph(nodes, "early_action", inputs, outputs, inits)


def _specs(values: list[onnx.ValueInfoProto]) -> list[dict]:
    dtypes = {TensorProto.UINT8: "uint8", TensorProto.INT64: "int64", TensorProto.FLOAT: "float32"}
    return [
        {
            "name": v.name,
            "dtype": dtypes[v.type.tensor_type.elem_type],
            "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
        }
        for v in values
    ]


def _serving(engine: str) -> tuple[dict, dict]:
    if engine == "classifier":
        return (
            {"category": list(CATEGORIES), "tags": list(TAGS), "quality": list(QUALITY_GRADES)},
            {
                "aggregation": {
                    "rule": "pooled_threshold",
                    "threshold": 0.5,
                    "top_n": 3,
                    "min_frames": 2,
                    "frame_threshold": 0.5,
                }
            },
        )
    if engine == "timeliness":
        from stream_tagger.text import HashedTokenizer

        return (
            {"timeliness": list(TIMELINESS_CLASSES)},
            {"tokenizer": HashedTokenizer().config(), "ttl_hours": dict(TIMELINESS_TTL_HOURS)},
        )
    return {"early_action": list(EARLY_ACTIONS)}, {}


GRAPHS = {"classifier": classifier_graph, "timeliness": timeliness_graph, "early_action": early_action_graph}


def write_engine(root: Path, engine: str, version: int = 1, seed: int = 0) -> Path:
    """Write root/<engine>/<version>/ (model, manifest, memory for early_action); returns the version dir."""
    rng = np.random.default_rng(seed)
    graph = GRAPHS[engine](rng)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    version_dir = root / engine / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, version_dir / MODEL_NAME)
    digests = {MODEL_NAME: file_sha256(version_dir / MODEL_NAME)}
    if engine == "early_action":
        _write_memory(version_dir / MEMORY_NAME, rng)
        digests[MEMORY_NAME] = file_sha256(version_dir / MEMORY_NAME)
    labels, serving = _serving(engine)
    manifest = EngineManifest(
        engine=engine,
        version=version,
        inputs=_specs(list(graph.input)),
        outputs=_specs(list(graph.output)),
        labels=labels,
        sampling=FRACTION if engine == "early_action" else SECONDS,
        serving=serving,
        preprocessing={"note": "tiny test engine"},
        training={"command": "tests/worker/tiny_engines.py", "seed": seed, "data_hash": "none"},
        sha256=digests,
    )
    manifest.write(version_dir)
    return version_dir


def _write_memory(path: Path, rng: np.random.Generator) -> None:
    from stream_tagger.memory_bank import MemoryBank

    features = rng.normal(0, 1, (REFS * 4, DIM)).astype(np.float32)
    labels = np.arange(REFS * 4, dtype=np.int64) % len(EARLY_ACTIONS)
    MemoryBank.build(features, labels, list(EARLY_ACTIONS), clusters_per_class=2).save(path)


def write_engine_repository(root: Path, version: int = 1) -> Path:
    for engine in GRAPHS:
        write_engine(root, engine, version)
    return root
