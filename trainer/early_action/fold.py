"""Fold the early-action graph's pixel preprocessing into its first convolution (exact, no retraining).

``MotionCNN`` feeds its patch stem 9 channels per frame: the standardised frame x_t, its change since
the previous frame x_t - x_{t-1} and since the first frame x_t - x_0. As exported, ONNX Runtime builds
that 9-channel float tensor at full resolution (cast, scale, standardise, two subtractions, a concat:
most of the engine's time) and then runs a 9-channel convolution that its NCHWc kernels do not take.
Everything before the stem's ReLU is linear in the raw pixels, and the stem has no padding, so with
the stem's weights split by input group, W = [Wa | Wb | Wc]:

    conv(W, [x_t, x_t - x_{t-1}, x_t - x_0]) + b
        = conv(Wa + Wb + Wc, x_t) - conv(Wb, x_{t-1}) - conv(Wc, x_0) + b
    conv(V, x) = conv(V / (255 std), raw) - (mean / std) · ΣV

So one 3-channel convolution of the raw frames into 3 × 24 channels, then, on the 16× smaller output,
a shift by one frame and two subtractions, give the same pre-activations (x_{-1} = x_0, as in
``MotionCNN``: frame 0's change is zero). Nothing after the stem changes.

    stream-tagger-train fold-motion-stem --engine engines/early_action/3 \\
        --json docs/results/early_action/fold-stem.json --publish
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream_tagger.engines.manifest import MANIFEST_NAME, MODEL_NAME, EngineManifest, file_sha256
from stream_tagger.engines.repository import load_engine, publish_version

FRAMES_INPUT = "frames"
PREFIX = "/fold_motion_stem/"
#: Largest |difference| allowed between the folded and the original graph's float outputs.
PARITY_ATOL = 1e-4


class NotAMotionStem(ValueError):
    """The graph does not start with MotionCNN's preprocessing and 9-channel, unpadded stem."""


def fold_motion_stem(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose first convolution reads the raw frames (see the module docstring)."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    nodes = list(graph.node)
    constants = _constants(graph)
    stem_at = next((k for k, node in enumerate(nodes) if node.op_type == "Conv"), None)
    if stem_at is None:
        raise NotAMotionStem("the graph has no convolution")
    stem = nodes[stem_at]
    weight, bias = (constants.get(name) for name in (stem.input[1], stem.input[2] if len(stem.input) > 2 else ""))
    attributes = {a.name: helper.get_attribute_value(a) for a in stem.attribute}
    if weight is None or weight.ndim != 4 or weight.shape[1] != 9 or any(attributes.get("pads", [0])) \
            or attributes.get("group", 1) != 1:
        raise NotAMotionStem("the first convolution is not an unpadded 9-channel stem")
    mean, std = _standardisation(nodes, constants)
    bias = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
    w = weight.astype(np.float64)
    wa, wb, wc = w[:, 0:3], w[:, 3:6], w[:, 6:9]
    kernel = (np.concatenate([wa + wb + wc, wb, wc]) / (255.0 * std)).astype(np.float32)
    folded_bias = (bias - (mean / std) * wa.sum(axis=(1, 2, 3))).astype(np.float32)
    new_nodes, new_constants = _folded_stem(stem, kernel, folded_bias, weight.shape[0])
    graph.initializer.extend(new_constants)
    rest = nodes[stem_at + 1:]
    kept = _live(nodes[:stem_at], new_nodes + rest, {output.name for output in graph.output})
    graph.ClearField("node")
    graph.node.extend(kept + new_nodes + rest)
    used = {name for node in graph.node for name in node.input}
    initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(initializers)
    onnx.checker.check_model(folded)
    return folded


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _standardisation(nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray]) -> tuple[float, float]:
    """(mean, std) of the chain Cast(frames) → Div 255 → Sub mean → Div std."""
    consumers = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chain, value = [], FRAMES_INPUT
    for op in ("Cast", "Div", "Sub", "Div"):
        node = next((n for n in consumers.get(value, []) if n.op_type == op), None)
        if node is None:
            raise NotAMotionStem(f"no {op} in the frames' preprocessing chain")
        chain.append(node)
        value = node.output[0]
    scale, mean, std = (float(np.asarray(constants.get(n.input[1], np.nan)).reshape(-1)[0]) for n in chain[1:])
    if scale != 255.0 or not np.isfinite(mean) or not np.isfinite(std) or std == 0:
        raise NotAMotionStem("the frames are not scaled by 255 and standardised by scalar constants")
    return mean, std


def _folded_stem(stem: onnx.NodeProto, kernel: np.ndarray, bias: np.ndarray, width: int):
    """Nodes from the uint8 ``frames`` [B, T, H, W, 3] to the stem's pre-activation [B*T, width, h, w]."""
    p = PREFIX
    constants = [numpy_helper.from_array(np.asarray(v), p + name) for name, v in {
        "kernel": kernel, "bias": bias.reshape(1, 1, width, 1, 1),
        "0": np.array([0], np.int64), "1": np.array([1], np.int64), "2": np.array([2], np.int64),
        "3": np.array([3], np.int64), "4": np.array([4], np.int64), "5": np.array([5], np.int64),
        "-1": np.array([-1], np.int64), "width": np.array([width], np.int64),
        "split": np.array([width] * 3, np.int64)}.items()]
    attributes = {a.name: helper.get_attribute_value(a) for a in stem.attribute if a.name != "group"}
    make = helper.make_node
    nodes = [
        make("Shape", [FRAMES_INPUT], [p + "frames_shape"]),
        make("Slice", [p + "frames_shape", p + "0", p + "2"], [p + "batch_time"]),
        make("Slice", [p + "frames_shape", p + "2", p + "5"], [p + "hwc"]),
        make("Concat", [p + "-1", p + "hwc"], [p + "flat_shape"], axis=0),
        make("Cast", [FRAMES_INPUT], [p + "pixels"], to=TensorProto.FLOAT),
        make("Reshape", [p + "pixels", p + "flat_shape"], [p + "flat"]),
        make("Transpose", [p + "flat"], [p + "nchw"], perm=[0, 3, 1, 2]),
        make("Conv", [p + "nchw", p + "kernel"], [p + "parts"], **attributes),
        make("Shape", [p + "parts"], [p + "parts_shape"]),
        make("Slice", [p + "parts_shape", p + "1", p + "4"], [p + "chw"]),
        make("Slice", [p + "parts_shape", p + "2", p + "4"], [p + "hw"]),
        make("Concat", [p + "batch_time", p + "chw"], [p + "per_clip_shape"], axis=0),
        make("Reshape", [p + "parts", p + "per_clip_shape"], [p + "per_clip"]),
        make("Split", [p + "per_clip", p + "split"], [p + "now", p + "since_previous", p + "since_first"], axis=2),
        make("Slice", [p + "since_previous", p + "0", p + "1", p + "1"], [p + "previous_first"]),
        make("Slice", [p + "since_previous", p + "0", p + "-1", p + "1"], [p + "previous_rest"]),
        make("Concat", [p + "previous_first", p + "previous_rest"], [p + "previous"], axis=1),
        make("Slice", [p + "since_first", p + "0", p + "1", p + "1"], [p + "first"]),
        make("Sub", [p + "now", p + "previous"], [p + "minus_previous"]),
        make("Sub", [p + "minus_previous", p + "first"], [p + "minus_first"]),
        make("Add", [p + "minus_first", p + "bias"], [p + "pre_activation"]),
        make("Concat", [p + "-1", p + "width", p + "hw"], [p + "stem_shape"], axis=0),
        make("Reshape", [p + "pre_activation", p + "stem_shape"], [stem.output[0]]),
    ]
    return nodes, constants


def _live(prefix: list[onnx.NodeProto], after: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """The nodes of ``prefix`` something still reads (shape arithmetic the later layers use)."""
    while True:
        used = {name for node in prefix + after for name in node.input} | outputs
        alive = [node for node in prefix if any(name in used for name in node.output)]
        if len(alive) == len(prefix):
            return alive
        prefix = alive


# ---- the command ----------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", type=Path, required=True, help="early_action version folder")
    parser.add_argument("--json", type=Path, required=True, help="where to write parity and timing")
    parser.add_argument("--publish", action="store_true", help="publish the folded graph as the next version")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    manifest = EngineManifest.load(args.engine)
    if manifest.engine != "early_action":
        raise SystemExit(f"{manifest.ref}: only early_action graphs have a motion stem")
    try:
        folded = fold_motion_stem(onnx.load(str(args.engine / MODEL_NAME)))
    except NotAMotionStem as exc:
        raise SystemExit(f"{manifest.ref}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="fold-stem-") as scratch:
        variant = Path(scratch) / "variant"
        variant.mkdir()
        for name in manifest.sha256:
            (variant / name).write_bytes((args.engine / name).read_bytes())
        onnx.save(folded, str(variant / MODEL_NAME))
        (variant / MANIFEST_NAME).write_text(
            manifest.model_copy(update={"sha256": {**manifest.sha256, MODEL_NAME: file_sha256(variant / MODEL_NAME)}}).to_json())
        report = compare(args.engine, variant, args.seed) | {"engine": manifest.ref}
        if args.publish:
            if not report["identical_votes"] or report["max_abs_diff"] > PARITY_ATOL:
                raise SystemExit(f"not published: the folded graph disagrees ({json.dumps(report)})")
            report["published"] = str(publish_version(
                args.engine.parent.parent, manifest.engine, {name: variant / name for name in manifest.sha256},
                feeds={spec.name: spec.feed for spec in manifest.inputs}, labels=manifest.labels,
                training=manifest.training.model_dump() | {"stem_folded_from": manifest.ref},
                preprocessing=manifest.preprocessing, serving=manifest.serving,
                metrics=manifest.metrics | {"stem_fold": {k: v for k, v in report.items() if k != "engine"}}))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def compare(original_dir: Path, folded_dir: Path, seed: int, batches=(1, 3, 8), seconds: float = 0.5) -> dict:
    """Both graphs on the same random frames: largest output difference, whether every frame's vote is
    the same, and CPU milliseconds per video at batch 1 and 4 (interleaved, one thread)."""
    original, folded = (load_engine(path, "onnxruntime", threads=1) for path in (original_dir, folded_dir))
    rng = np.random.default_rng(seed)
    try:
        policy = original.sampling_policies[0]
        worst, same_votes = 0.0, True
        for batch in batches:
            frames = {policy: rng.integers(0, 256, (batch, policy.frames, policy.height, policy.width, 3), np.uint8)}
            a, b = original.infer(frames, [""] * batch), folded.infer(frames, [""] * batch)
            same_votes &= bool(np.array_equal(a["frame_votes"], b["frame_votes"]))
            worst = max([worst] + [float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a
                                   if a[k].dtype.kind == "f"])
        timing = {}
        for batch in (1, 4):
            frames = {policy: rng.integers(0, 256, (batch, policy.frames, policy.height, policy.width, 3), np.uint8)}
            samples = {"original": [], "folded": []}
            for _ in range(5):
                for name, engine in (("original", original), ("folded", folded)):
                    started, calls = time.process_time(), 0
                    while time.process_time() - started < seconds / 5:
                        engine.infer(frames, [""] * batch)
                        calls += 1
                    samples[name].append((time.process_time() - started) * 1000 / calls / batch)
            timing[f"batch_{batch}"] = {name: {"median": round(float(np.median(v)), 3), "min": round(min(v), 3),
                                               "max": round(max(v), 3)} for name, v in samples.items()}
    finally:
        original.close()
        folded.close()
    return {"max_abs_diff": worst, "identical_votes": same_votes, "batches": list(batches),
            "cpu_ms_per_video": timing}
