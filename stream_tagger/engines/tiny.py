"""Tiny engines that honour the engine contract, for tests, the bench and the demo without trained models.

The graphs (built with ``onnx.helper``, so they need the ``onnx`` package from the dev extra) compute
cheap functions of the mean pixel and the title ids; they are published through the repository like a
trained engine, so they exercise the same manifest, feeds and record fields.

    write_tiny_repository(root)             # root/<engine>/1/ for the three engines
    write_tiny_engine(root, "classifier", version=2, seed=3)
    write_tiny_engine(root, "classifier", fragments=FRAGMENTS)  # quality from a fragments input
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream_tagger.engines.manifest import (
    MEMORY_NAME,
    MODEL_NAME,
    ConstantFeed,
    FragmentsFeed,
    FramesFeed,
    TitleFeed,
)
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import FragmentPolicy, SamplingPolicy
from stream_tagger.text import HashedTokenizer

#: Label sets shaped like the embedded synthetic world's (6 categories, 24 tags, 4 grades...).
LABELS = {
    "classifier": {
        "category": ["news", "sports", "gaming", "nature", "cooking", "music"],
        "tags": [f"tag_{i:02d}" for i in range(24)],
        "quality": ["excellent", "good", "fair", "poor"],
    },
    "timeliness": {"timeliness": ["hours", "days", "weeks", "evergreen"]},
    "early_action": {"early_action": ["keep_straight", "turn_left", "turn_right", "lane_change", "u_turn", "stop"]},
}
TTL_HOURS = {"hours": 6, "days": 72, "weeks": 504, "evergreen": 8760}

T, H, W, DIM, REFS = 8, 64, 64, 4, 12
SECONDS = SamplingPolicy(frames=T, height=H, width=W, seconds=1.0, max_seconds=2.0)
FRACTION = SamplingPolicy(frames=T, height=H, width=W, fraction=0.1, max_seconds=2.0)
#: A small native-resolution mosaic (4×4 patches of 16 px from 2 frames) for a classifier's quality.
FRAGMENTS = FragmentPolicy(frames=2, grid=4, patch=16, seconds=1.0, max_seconds=2.0)


def _const(name: str, array: np.ndarray):
    return numpy_helper.from_array(array, name)


def _frame_means():
    """frames uint8 [b,T,H,W,3] -> frame_mean float [b,T,1] in [0,1]."""
    return [
        helper.make_node("Cast", ["frames"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["frame_mean"], axes=[2, 3, 4], keepdims=0),
        helper.make_node("Div", ["frame_mean", "c255"], ["frame_mean01"]),
        helper.make_node("Unsqueeze", ["frame_mean01", "axis_last"], ["frame_col"]),
    ]


def _common_inits():
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


def _tensor(name: str, dtype: int, shape: list):
    return helper.make_tensor_value_info(name, dtype, shape)


def _frames():
    return _tensor("frames", TensorProto.UINT8, ["batch", T, H, W, 3])


def classifier_graph(rng: np.random.Generator, fragments: FragmentPolicy | None = None):
    """Heads over the mean pixel; with ``fragments``, quality reads the fragments input's mean pixel."""
    nodes, inits = _frame_means(), _common_inits()
    nodes.append(helper.make_node("ReduceMean", ["frame_col"], ["clip_mean"], axes=[1], keepdims=0))
    inputs = [_frames()]
    quality_source = "clip_mean"
    if fragments is not None:
        inputs.append(_tensor("fragments", TensorProto.UINT8, ["batch", fragments.frames, fragments.height,
                                                               fragments.width, 3]))
        nodes += [
            helper.make_node("Cast", ["fragments"], ["fragments_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["fragments_f"], ["fragments_sum"], axes=[1, 2, 3, 4], keepdims=0),
            helper.make_node("Div", ["fragments_sum", "c255"], ["fragments_mean"]),
            helper.make_node("Unsqueeze", ["fragments_mean", "axis_1"], ["fragments_col"]),
        ]
        inits.append(_const("axis_1", np.array([1], np.int64)))
        quality_source = "fragments_col"
    for name, width, source, op in (
        ("category_probs", 6, "clip_mean", "Softmax"),
        ("quality_probs", 4, quality_source, "Softmax"),
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
    return helper.make_graph(nodes, "classifier", inputs, outputs, inits)


def timeliness_graph(rng: np.random.Generator):
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
    inputs = [_frames(), _tensor("title_ids", TensorProto.INT64, ["batch", 32])]
    outputs = [
        _tensor(n, TensorProto.FLOAT, ["batch", 4])
        for n in ("timeliness_probs", "visual_probs", "text_probs")
    ]
    return helper.make_graph(nodes, "timeliness", inputs, outputs, inits)


def early_action_graph(rng: np.random.Generator):
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
        _frames(),
        _tensor("memory_refs", TensorProto.FLOAT, ["refs", DIM]),
        _tensor("memory_labels", TensorProto.INT64, ["refs"]),
    ]
    outputs = [
        _tensor("action_probs", TensorProto.FLOAT, ["batch", 6]),
        _tensor("frame_votes", TensorProto.INT64, ["batch", T]),
        _tensor("features", TensorProto.FLOAT, ["batch", T, DIM]),
    ]
    return helper.make_graph(nodes, "early_action", inputs, outputs, inits)


GRAPHS = {"classifier": classifier_graph, "timeliness": timeliness_graph, "early_action": early_action_graph}


def _sampling(engine: str) -> SamplingPolicy:
    return FRACTION if engine == "early_action" else SECONDS


def _feeds(engine: str, fragments: FragmentPolicy | None = None) -> dict:
    feeds: dict = {"frames": FramesFeed(sampling=_sampling(engine))}
    if fragments is not None:
        feeds["fragments"] = FragmentsFeed(fragments=fragments)
    if engine == "timeliness":
        feeds["title_ids"] = TitleFeed(tokenizer=HashedTokenizer().config())
    if engine == "early_action":
        feeds["memory_refs"] = ConstantFeed(file=MEMORY_NAME, key="refs")
        feeds["memory_labels"] = ConstantFeed(file=MEMORY_NAME, key="ref_labels")
    return feeds


def _serving(engine: str) -> dict:
    if engine == "classifier":
        return {"aggregation": {"rule": "pooled_threshold", "threshold": 0.5, "top_n": 3, "min_frames": 2,
                                "frame_threshold": 0.5}}
    if engine == "timeliness":
        return {"ttl_hours": dict(TTL_HOURS)}
    return {}


def write_tiny_engine(root: Path, engine: str, version: int | None = None, seed: int = 0,
                      fragments: FragmentPolicy | None = None) -> Path:
    """Publish a tiny ``engine`` under ``root``; returns its version folder. ``fragments`` (classifier
    only) adds a fragments input that the quality head reads."""
    if fragments is not None and engine != "classifier":
        raise ValueError("only the tiny classifier takes a fragments input")
    rng = np.random.default_rng(seed)
    graph = classifier_graph(rng, fragments) if fragments is not None else GRAPHS[engine](rng)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory() as scratch:
        files = {MODEL_NAME: Path(scratch) / MODEL_NAME}
        onnx.save(model, files[MODEL_NAME])
        if engine == "early_action":
            files[MEMORY_NAME] = Path(scratch) / MEMORY_NAME
            _write_memory(files[MEMORY_NAME], rng)
        return publish_version(
            Path(root), engine, files, feeds=_feeds(engine, fragments), labels=LABELS[engine], serving=_serving(engine),
            training={"command": "stream_tagger.engines.tiny", "seed": seed, "data_hash": "none"},
            version=version,
        )


def _write_memory(path: Path, rng: np.random.Generator) -> None:
    from stream_tagger.engines.memory_bank import MemoryBank

    actions = LABELS["early_action"]["early_action"]
    features = rng.normal(0, 1, (REFS * 4, DIM)).astype(np.float32)
    labels = np.arange(REFS * 4, dtype=np.int64) % len(actions)
    MemoryBank.build(features, labels, actions, clusters_per_class=2).save(path)


def write_tiny_repository(root: Path, version: int | None = None) -> Path:
    """All three tiny engines under ``root``; returns ``root``."""
    for engine in GRAPHS:
        write_tiny_engine(root, engine, version)
    return Path(root)
