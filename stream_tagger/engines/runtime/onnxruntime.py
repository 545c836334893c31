"""CPU inference with ONNX Runtime (the embedded default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from stream_tagger.engines.manifest import MODEL_NAME, EngineManifest
from stream_tagger.errors import EngineFailed


class OnnxRuntime:
    backend = "onnxruntime"

    def __init__(self, version_dir: Path, manifest: EngineManifest, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads otherwise busy-wait after every call and steal ~30 % of a 2-core worker's
        # CPU from decoding (bench/results/cpu-2core-final-profile.txt).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(version_dir / MODEL_NAME), options, providers=["CPUExecutionProvider"]
        )
        self._output_names = [spec.name for spec in manifest.outputs]

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self._session.run(self._output_names, dict(feeds))
        except Exception as exc:  # ORT raises its own untyped errors; wrap at the boundary
            raise EngineFailed(f"onnxruntime inference failed: {exc}") from exc
        return dict(zip(self._output_names, values))

    def close(self) -> None:
        self._session = None
