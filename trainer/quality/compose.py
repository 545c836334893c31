"""One classifier graph from two: the category/tag graph (frames in) and the fragment quality graph.

The published classifier stays one ONNX model with one ``quality_probs`` output, so the worker, ONNX
Runtime and TensorRT see one engine; its inputs become ``frames`` and ``fragments``. The category
and tag heads keep the weights they were trained with (the quality branch is a separate input), and
the base graph's own ``quality_probs`` (64 px frames), if it has one, is dropped with the nodes that
only it used.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx.compose
import onnx.utils

QUALITY_OUTPUT = "quality_probs"
FRAGMENTS_INPUT = "fragments"
_PREFIX = "fragment_quality/"


def attach_quality(base_path: Path, quality_path: Path, out_path: Path) -> Path:
    """Write to ``out_path`` the base graph without its quality output, plus the quality graph."""
    base = _without_output(onnx.load(str(base_path)), QUALITY_OUTPUT)
    quality = onnx.load(str(quality_path))
    if [i.name for i in quality.graph.input] != [FRAGMENTS_INPUT] or \
            [o.name for o in quality.graph.output] != [QUALITY_OUTPUT]:
        raise ValueError(f"{quality_path}: expected one input {FRAGMENTS_INPUT!r} and one output {QUALITY_OUTPUT!r}")
    _align_versions(base, quality)
    merged = onnx.compose.merge_models(base, quality, io_map=[], prefix2=_PREFIX)
    for value in [*merged.graph.input, *merged.graph.output]:
        value.name = value.name.removeprefix(_PREFIX)
    for node in merged.graph.node:
        node.input[:] = [_public(name) for name in node.input]
        node.output[:] = [_public(name) for name in node.output]
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out_path))
    return Path(out_path)


def _public(name: str) -> str:
    return name.removeprefix(_PREFIX) if name in (_PREFIX + FRAGMENTS_INPUT, _PREFIX + QUALITY_OUTPUT) else name


def _without_output(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    inputs = [value.name for value in model.graph.input]
    outputs = [value.name for value in model.graph.output if value.name != output]
    if len(outputs) == len(model.graph.output):
        return model
    return onnx.utils.Extractor(model).extract_model(inputs, outputs)


def _align_versions(first: onnx.ModelProto, second: onnx.ModelProto) -> None:
    first.ir_version = second.ir_version = max(first.ir_version, second.ir_version)
    versions = {o.domain or "ai.onnx": o.version for o in first.opset_import}
    clash = [o for o in second.opset_import if versions.get(o.domain or "ai.onnx", o.version) != o.version]
    if clash:
        raise ValueError(f"the two graphs import different opsets: {clash}")
