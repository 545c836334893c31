"""Engine runtimes behind one small interface; the factory imports only the chosen backend."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from stream_tagger.engines.manifest import EngineManifest

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """Runs one engine version: named numpy inputs in, named numpy outputs out (batch-first)."""

    backend: str

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def tensorrt_available() -> bool:
    """True when TensorRT and pycuda import and a CUDA device is visible."""
    try:
        from stream_tagger.engines.runtime.tensorrt import gpu_ready
    except ImportError:
        return False
    return gpu_ready()


def make_runtime(backend: str, version_dir: Path, manifest: EngineManifest, threads: int = 0) -> Runtime:
    """Build a runtime for one engine version; ``auto`` prefers TensorRT when it can run here."""
    if backend == "auto":
        backend = "tensorrt" if tensorrt_available() else "onnxruntime"
        log.info("runtime backend auto -> %s for %s", backend, manifest.ref)
    if backend == "onnxruntime":
        from stream_tagger.engines.runtime.onnxruntime import OnnxRuntime

        return OnnxRuntime(version_dir, manifest, threads=threads)
    if backend == "tensorrt":
        from stream_tagger.engines.runtime.tensorrt import TensorRTRuntime

        return TensorRTRuntime(version_dir, manifest)
    raise ValueError(f"unknown runtime backend {backend!r} (expected auto, onnxruntime or tensorrt)")
