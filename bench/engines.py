"""The engines a benchmark serves: the newest version of each in the engine repository.

Their manifests say which early frames each engine needs, so the decode bound decodes exactly the
union of those sampling policies, no more and no less than the worker has to. Inputs are built by the
repository's own feed builder, as in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream_tagger.engines.manifest import ENGINE_NAMES, MODEL_NAME, EngineManifest
from stream_tagger.engines.repository import EngineInputs, latest_version
from stream_tagger.sampling import SamplingPolicy

ENGINES_DIR = Path(__file__).resolve().parent.parent / "engines"
BENCH_TITLE = "Breaking: storm hits the coast, live now"


@dataclass(frozen=True)
class Engine:
    """One engine version as the benchmarks use it: no runtime yet (each bench picks its backend)."""

    version_dir: Path
    manifest: EngineManifest
    inputs: EngineInputs

    @property
    def name(self) -> str:
        return self.manifest.engine

    def random_feeds(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Random frames for every policy, a realistic title, the engine's constants."""
        rng = np.random.default_rng(seed)
        frames = {
            p: rng.integers(0, 256, (batch, p.frames, p.height, p.width, 3), dtype=np.uint8)
            for p in self.manifest.sampling_policies
        }
        return self.inputs.feeds(frames, [BENCH_TITLE] * batch)


def newest_engines(engines_dir: Path = ENGINES_DIR) -> list[Engine]:
    """The highest version of every engine present."""
    found = []
    for name in ENGINE_NAMES:
        version_dir = latest_version(engines_dir / name)
        if version_dir is not None:
            manifest = EngineManifest.load(version_dir)
            found.append(Engine(version_dir, manifest, EngineInputs.load(version_dir, manifest)))
    return found


def decode_policies(engines: list[Engine]) -> list[SamplingPolicy]:
    """The union of the engines' sampling policies: what the worker decodes per video."""
    return list(dict.fromkeys(p for engine in engines for p in engine.manifest.sampling_policies))


def total_parameters(engines: list[Engine]) -> int:
    """Weights in all engines' ONNX graphs: the naive baseline's model is sized to match."""
    import onnx

    total = 0
    for engine in engines:
        graph = onnx.load(str(engine.version_dir / MODEL_NAME)).graph
        total += sum(int(np.prod(init.dims)) for init in graph.initializer)
    return total
