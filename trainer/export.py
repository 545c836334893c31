"""Shared engine export: torch module → ONNX (opset 17, dynamic batch), ORT parity, versioned manifest.

Every trainer ends the same way: export the graph, prove ONNX Runtime computes what torch computes,
then write ``engines/<engine>/<N>/`` with ``manifest.json`` (sha256 of each file) as the last step so
the worker never sees a half-written version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from stream_tagger.engine_manifest import MANIFEST_NAME, EngineManifest, file_sha256

OPSET = 17


def export_onnx(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], path: Path,
                input_names: list[str], output_names: list[str],
                dynamic_axes: dict[str, dict[int, str]] | None = None) -> Path:
    """Trace ``module(*example_inputs)`` to ``path``; by default every input/output has a "batch" axis 0."""
    if dynamic_axes is None:
        dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    module.eval()
    torch.onnx.export(module, tuple(example_inputs), str(path), input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
    return Path(path)


def check_parity(module: torch.nn.Module, onnx_path: Path, feeds: dict[str, np.ndarray], atol: float = 1e-4) -> float:
    """Max |ORT − torch| over every output for ``feeds`` (ordered like the module's arguments); asserts ≤ atol."""
    module.eval()
    with torch.no_grad():
        expected = module(*(torch.from_numpy(value) for value in feeds.values()))
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    diff = max(float(np.max(np.abs(g.astype(np.float64) - e.numpy().astype(np.float64)), initial=0.0))
               for g, e in zip(got, expected))
    batch = next(iter(feeds.values())).shape[0]
    print(f"parity {Path(onnx_path).name} batch={batch}: max |ort - torch| = {diff:.2e} (atol {atol:g})")
    assert diff <= atol, f"ONNX Runtime and torch disagree: {diff:.3e} > {atol:g}"
    return diff


def next_version(engine_dir: Path) -> int:
    """One more than the highest numeric version folder under ``engine_dir`` (1 when empty)."""
    versions = [int(p.name) for p in Path(engine_dir).glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def write_engine_version(engines_dir: Path, engine: str, manifest_fields: dict[str, Any],
                         files: dict[str, Path], version: int | None = None) -> Path:
    """Copy ``files`` ({name in version dir: source}) into ``engines_dir/engine/N`` and write its manifest.

    ``manifest_fields`` holds every EngineManifest field except engine, version, sha256, created_at.
    The folder is assembled under a temporary name and renamed, so it appears complete or not at all.
    """
    engine_dir = Path(engines_dir) / engine
    engine_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(engine_dir) if version is None else version
    staging = engine_dir / f".staging-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, source in files.items():
        shutil.copyfile(source, staging / name)
    manifest = EngineManifest(engine=engine, version=version, sha256={n: file_sha256(staging / n) for n in files},
                              created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              **manifest_fields)
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    target = engine_dir / str(version)
    os.rename(staging, target)  # fails if the version exists: versions are immutable
    return target
