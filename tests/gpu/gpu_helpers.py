"""Helpers of the GPU-path tests: tiny engines from the shared builder, feeds from the repository's builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream_tagger.engines import tiny
from stream_tagger.engines.manifest import ENGINE_NAMES, EngineManifest
from stream_tagger.engines.repository import EngineInputs, latest_version

POLICY = tiny.FRACTION
REPO_ENGINES = Path(__file__).resolve().parents[2] / "engines"
TITLES = ["Breaking: storm hits the coast", "How to bake bread", "Live: match day", "今日のニュース"]


def write_tiny_engine(version_dir: Path) -> EngineManifest:
    """The tiny early_action engine (uint8 frames, a dynamic ``refs`` axis, float and int64 outputs)."""
    root = version_dir.parent.parent
    tiny.write_tiny_engine(root, version_dir.parent.name, version=int(version_dir.name))
    return EngineManifest.load(version_dir)


def engine_feeds(version_dir: Path, manifest: EngineManifest, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Every input of any engine: random frames per policy, real titles, the engine's constants."""
    rng = np.random.default_rng(seed)
    frames = {
        p: rng.integers(0, 256, size=(batch, p.frames, p.height, p.width, 3), dtype=np.uint8)
        for p in manifest.sampling_policies
    }
    titles = [TITLES[i % len(TITLES)] for i in range(batch)]
    return EngineInputs.load(version_dir, manifest).feeds(frames, titles)


def repository_engines() -> list[tuple[Path, EngineManifest]]:
    """The newest version of each engine under the repository's ``engines/``."""
    found = []
    for name in ENGINE_NAMES:
        version_dir = latest_version(REPO_ENGINES / name)
        if version_dir is not None:
            found.append((version_dir, EngineManifest.load(version_dir)))
    return found
