"""Stand-in engines (tiny ONNX graphs honouring the engine contract) for when none is built yet.

They let every benchmark run before the trainer has exported real engines; a result made with
them says so (``engines.stand_in``). The graphs follow the contract: opset 17, dynamic ``batch``,
uint8 ``frames [batch, 8, 64, 64, 3]`` cast and laid out inside the graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench.engines import CONTRACT_POLICIES
from stream_tagger.engine_manifest import MODEL_NAME, EngineManifest, TensorSpec, TrainingRecord, file_sha256

# engine -> (extra inputs as (name, dtype, shape), outputs as (name, classes)), sampling policy
SPECS = {
    "classifier": ([], [("category_probs", 6), ("tag_probs", 24), ("quality_probs", 4)], 0),
    "timeliness": ([("title_ids", TensorProto.INT64, ["batch", 32])], [("timeliness_probs", 4)], 0),
    "early_action": (
        [("memory_refs", TensorProto.FLOAT, ["refs", 16]), ("memory_labels", TensorProto.INT64, ["refs"])],
        [("action_probs", 6)],
        1,
    ),
}
WIDTH = 16


def build(out_dir: Path) -> Path:
    """Write ``out_dir/<engine>/1/{model.onnx, manifest.json}`` for the three engines; returns out_dir."""
    rng = np.random.default_rng(0)
    for engine, (extras, outputs, policy_index) in SPECS.items():
        version_dir = out_dir / engine / "1"
        version_dir.mkdir(parents=True, exist_ok=True)
        onnx.save(_graph(engine, extras, outputs, rng), str(version_dir / MODEL_NAME))
        _manifest(engine, extras, outputs, policy_index, version_dir).write(version_dir)
    return out_dir


def _graph(engine: str, extras: list, outputs: list, rng: np.random.Generator) -> onnx.ModelProto:
    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    nodes = [
        helper.make_node("Cast", ["frames"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["f", "flat_shape"], ["f4"]),  # [batch*8, 64, 64, 3]
        helper.make_node("Transpose", ["f4"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Reshape", ["g", "clip_shape"], ["per_frame"]),  # [batch, 8, WIDTH]
        helper.make_node("ReduceMean", ["per_frame"], ["pooled"], axes=[1], keepdims=0),
    ]
    inits = [
        weight("w1", (WIDTH, 3, 3, 3)),
        weight("w2", (WIDTH, WIDTH, 3, 3)),
        numpy_helper.from_array(np.array([-1, 64, 64, 3], np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([-1, 8, WIDTH], np.int64), "clip_shape"),
    ]
    for name, classes in outputs:
        inits.append(weight(f"head_{name}", (WIDTH, classes)))
        nodes += [
            helper.make_node("MatMul", ["pooled", f"head_{name}"], [f"logits_{name}"]),
            helper.make_node("Softmax", [f"logits_{name}"], [name], axis=-1),
        ]
    inputs = [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["batch", 8, 64, 64, 3])]
    inputs += [helper.make_tensor_value_info(n, t, s) for n, t, s in extras]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", c]) for n, c in outputs]
    graph = helper.make_graph(nodes, f"tiny_{engine}", inputs, outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _manifest(
    engine: str, extras: list, outputs: list, policy_index: int, version_dir: Path
) -> EngineManifest:
    dtype = {TensorProto.INT64: "int64", TensorProto.FLOAT: "float32"}
    return EngineManifest(
        engine=engine,
        version=1,
        inputs=[TensorSpec(name="frames", dtype="uint8", shape=["batch", 8, 64, 64, 3])]
        + [TensorSpec(name=n, dtype=dtype[t], shape=s) for n, t, s in extras],
        outputs=[TensorSpec(name=n, dtype="float32", shape=["batch", c]) for n, c in outputs],
        labels={},
        sampling=CONTRACT_POLICIES[policy_index],
        training=TrainingRecord(command="bench stand-in (random weights)", seed=0, data_hash="none"),
        sha256={MODEL_NAME: file_sha256(version_dir / MODEL_NAME)},
    )
