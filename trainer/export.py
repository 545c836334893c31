"""Shared engine export: torch module → ONNX (opset 17, dynamic batch) → proof that ORT computes the same.

Publishing the exported graph is the engine repository's job (``stream_tagger.engines.repository``);
this module only traces and checks.
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

OPSET = 17


def export_onnx(module: torch.nn.Module, feeds: Mapping[str, np.ndarray], output_names: Sequence[str], path: Path,
                shared_inputs: Sequence[str] = (), opset: int = OPSET) -> Path:
    """Trace ``module(*feeds.values())`` to ``path``. Every input and output gets a dynamic "batch" axis 0,
    except ``shared_inputs`` (the same for every clip, e.g. a memory bank), whose axis 0 is "refs"."""
    axes = {name: {0: "refs" if name in shared_inputs else "batch"} for name in feeds}
    axes.update({name: {0: "batch"} for name in output_names})
    module.eval()
    torch.onnx.export(module, tuple(torch.from_numpy(value) for value in feeds.values()), str(path),
                      input_names=list(feeds), output_names=list(output_names), dynamic_axes=axes,
                      opset_version=opset, dynamo=False)
    return Path(path)


def check_parity(module: torch.nn.Module, onnx_path: Path, feeds: Mapping[str, np.ndarray], atol: float = 1e-4) -> float:
    """Max |ORT − torch| over every output for ``feeds`` (ordered like the module's arguments); asserts ≤ atol."""
    module.eval()
    with torch.no_grad():
        expected = module(*(torch.from_numpy(value) for value in feeds.values()))
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, dict(feeds))
    diff = max(float(np.max(np.abs(g.astype(np.float64) - e.numpy().astype(np.float64)), initial=0.0))
               for g, e in zip(got, expected))
    batch = next(iter(feeds.values())).shape[0]
    print(f"parity {Path(onnx_path).name} batch={batch}: max |ort - torch| = {diff:.2e} (atol {atol:g})")
    assert diff <= atol, f"ONNX Runtime and torch disagree: {diff:.3e} > {atol:g}"
    return diff


def dataset_hash(directory: Path) -> str:
    """``sha256:<64 hex>`` of a dataset's manifest: what the engine manifest records as ``data_hash``."""
    return "sha256:" + hashlib.sha256((Path(directory) / "manifest.jsonl").read_bytes()).hexdigest()


def command_line() -> str:
    return shlex.join(["stream-tagger-train", *sys.argv[1:]])
