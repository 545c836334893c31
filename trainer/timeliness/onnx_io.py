"""Export a torch model to an engine version (model.onnx + manifest.json), with an ORT parity check.

The timeliness and early-action trainers' manifest writing; tracing and the parity check are the
shared ``trainer/export.py``.
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
from trainer import export

def export_onnx(model: torch.nn.Module, feeds: dict[str, np.ndarray], output_names: list[str], path: Path,
                fixed_inputs: tuple[str, ...] = ()) -> None:
    """Trace ``model(**feeds)`` to ONNX; inputs get a dynamic batch axis, ``fixed_inputs`` a free "refs" axis."""
    dynamic = {name: {0: "refs" if name in fixed_inputs else "batch"} for name in feeds}
    dynamic.update({name: {0: "batch"} for name in output_names})
    export.export_onnx(model, [torch.from_numpy(value) for value in feeds.values()], path,
                       list(feeds), output_names, dynamic)


def assert_parity(model: torch.nn.Module, feeds: dict[str, np.ndarray], path: Path, atol: float = 1e-4) -> float:
    """Max |ORT - torch| over every output; raises AssertionError if above ``atol``."""
    return export.check_parity(model, path, feeds, atol)


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
        version = export.next_version(engine_dir)
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
