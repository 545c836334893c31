"""Export a torch model to an engine version (model.onnx + manifest.json), with an ORT parity check.

Local to the timeliness/early-action trainers (the shared ``trainer/export.py`` was not there when
these were written); both engines use it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shlex
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from stream_tagger.engine_manifest import MANIFEST_NAME, MODEL_NAME, EngineManifest, TensorSpec, file_sha256

OPSET = 17


def export_onnx(model: torch.nn.Module, feeds: dict[str, np.ndarray], output_names: list[str], path: Path,
                fixed_inputs: tuple[str, ...] = ()) -> None:
    """Trace ``model(**feeds)`` to ONNX; every input except ``fixed_inputs`` gets a dynamic batch axis."""
    model.eval()
    args = tuple(torch.from_numpy(value) for value in feeds.values())
    dynamic = {name: {0: "batch"} for name in feeds if name not in fixed_inputs}
    dynamic.update({name: {0: "batch"} for name in output_names})
    for name in fixed_inputs:  # the memory bank's size is free too
        dynamic[name] = {0: "refs"}
    torch.onnx.export(model, args, str(path), input_names=list(feeds), output_names=output_names,
                      dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)


def assert_parity(model: torch.nn.Module, feeds: dict[str, np.ndarray], path: Path, atol: float = 1e-4) -> float:
    """Max |ORT - torch| over every output; raises if above ``atol``."""
    with torch.no_grad():
        expected = model(*(torch.from_numpy(value) for value in feeds.values()))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    got = session.run(names, feeds)
    worst = 0.0
    for want, have in zip(expected, got):
        worst = max(worst, float(np.abs(want.numpy().astype(np.float64) - have.astype(np.float64)).max()))
    if worst > atol:
        raise AssertionError(f"ONNX Runtime differs from torch by {worst:.2e} (> {atol:.0e})")
    return worst


def tensor_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX file as manifest specs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    kinds = {"tensor(uint8)": "uint8", "tensor(int64)": "int64", "tensor(float)": "float32", "tensor(int32)": "int32"}

    def spec(arg) -> TensorSpec:
        return TensorSpec(name=arg.name, dtype=kinds[arg.type], shape=[d if d is not None else "batch" for d in arg.shape])

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def next_version_dir(engines_root: Path, engine: str, version: int | None) -> Path:
    engine_dir = engines_root / engine
    engine_dir.mkdir(parents=True, exist_ok=True)
    if version is None:
        taken = [int(p.name) for p in engine_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        version = max(taken, default=0) + 1
    target = engine_dir / str(version)
    target.mkdir(exist_ok=True)
    return target


def data_hash(directory: Path) -> str:
    return "sha256:" + hashlib.sha256((directory / "manifest.jsonl").read_bytes()).hexdigest()[:16]


def write_manifest(version_dir: Path, **fields) -> EngineManifest:
    """Fill in I/O specs, sha256 of every file and the timestamp, then write manifest.json."""
    inputs, outputs = tensor_specs(version_dir / MODEL_NAME)
    files = sorted(p.name for p in version_dir.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    manifest = EngineManifest(version=int(version_dir.name), inputs=inputs, outputs=outputs,
                              sha256={name: file_sha256(version_dir / name) for name in files},
                              created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **fields)
    manifest.write(version_dir)
    return manifest


def command_line() -> str:
    return "stream-tagger-train " + shlex.join(sys.argv[1:])
