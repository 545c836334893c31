"""The engines a benchmark serves: the newest version of each in the engine repository.

Their manifests say which early frames each engine needs, so the decode bound decodes exactly the
union of those sampling policies, no more and no less than the worker has to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream_tagger.engine_manifest import MANIFEST_NAME, EngineManifest
from stream_tagger.sampling import SamplingPolicy

ENGINES_DIR = Path(__file__).resolve().parent.parent / "engines"

#: The agreed policies (team brief), used only when no engine has been built yet.
CONTRACT_POLICIES = (
    SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0),
    SamplingPolicy(frames=8, height=64, width=64, fraction=0.1, max_seconds=2.0),
)


@dataclass(frozen=True)
class Engine:
    name: str
    version_dir: Path
    manifest: EngineManifest


def newest_engines(engines_dir: Path = ENGINES_DIR) -> list[Engine]:
    """The highest version of every engine with a manifest, sorted by engine name."""
    found = []
    for engine_dir in sorted(p for p in engines_dir.glob("*") if p.is_dir()):
        versions = [p for p in engine_dir.iterdir() if p.name.isdigit() and (p / MANIFEST_NAME).exists()]
        if versions:
            newest = max(versions, key=lambda p: int(p.name))
            found.append(Engine(engine_dir.name, newest, EngineManifest.load(newest)))
    return found


def decode_policies(engines: list[Engine]) -> list[SamplingPolicy]:
    """The union of the engines' sampling policies (the contract's when none is built yet)."""
    if not engines:
        return list(CONTRACT_POLICIES)
    return list(dict.fromkeys(engine.manifest.sampling for engine in engines))


def total_parameters(engines: list[Engine]) -> int:
    """Weights in all engines' ONNX graphs: the naive baseline's model is sized to match."""
    import numpy as np
    import onnx

    total = 0
    for engine in engines:
        graph = onnx.load(str(engine.version_dir / "model.onnx")).graph
        total += sum(int(np.prod(init.dims)) for init in graph.initializer)
    return total
