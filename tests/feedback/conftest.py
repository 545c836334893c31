"""Fixtures of the memory-writer tests: synthetic-world clips, a thinned copy of the trained engine.

Clips come from the synthetic world (the generator behind ``stream-tagger-train make-dataset``) with
their early action chosen, so a few dozen clips cover the classes a test needs. The engine is the
committed ``engines/early_action/1`` with one class's bank thinned (``THINNED``), published beside it
as version 2.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from feedback_helpers import CONFIRM, EVAL_PER_CLASS, HELD_OUT, POISON, POISON_SOURCE, REPO, THINNED

from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.testing.memory import thin_class


@dataclass(frozen=True)
class World:
    media: Path  # every clip lies under it (the URI root of the worker and the writer)
    eval_dir: Path  # a dataset folder (manifest.jsonl) with EVAL_PER_CLASS clips of every class
    confirm: list[Path]  # clips of THINNED, confirmed
    held_out: list[Path]  # other clips of THINNED, only tagged
    poison: list[Path]  # clips of POISON_SOURCE, confirmed as POISON_LABEL


def _render(folder: Path, seed: int, labels: list[str]) -> list[tuple[Path, dict]]:
    from video_world.render import write_clip
    from video_world.spec import WorldOptions, manifest_row, sample_clip

    (folder / "clips").mkdir(parents=True, exist_ok=True)
    written = []
    for index, label in enumerate(labels):
        spec = sample_clip(seed, index, WorldOptions()).replace(early_action=label)
        relative = f"clips/{spec.clip_id}.mp4"
        write_clip(spec, folder / relative)
        written.append((folder / relative, manifest_row(spec, relative)))
    return written


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    media = tmp_path_factory.mktemp("memory-media")
    classes = MemoryBank.load(REPO / "engines" / "early_action" / "1").classes
    eval_rows = _render(media / "eval", 8101, [c for c in classes for _ in range(EVAL_PER_CLASS)])
    (media / "eval" / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for _, row in eval_rows))
    thinned = [path for path, _ in _render(media / "thinned", 8102, [THINNED] * (CONFIRM + HELD_OUT))]
    poison = [path for path, _ in _render(media / "poison", 8103, [POISON_SOURCE] * POISON)]
    return World(media, media / "eval", thinned[:CONFIRM], thinned[CONFIRM:], poison)


@pytest.fixture(scope="session")
def thinned_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """engines/early_action/1 (the trained engine) and /2 (THINNED's bank cut to 8 atypical vectors)."""
    root = tmp_path_factory.mktemp("memory-engines")
    shutil.copytree(REPO / "engines" / "early_action" / "1", root / "early_action" / "1")
    thin_class(root, THINNED)
    return root


@pytest.fixture
def engines_root(tmp_path: Path, thinned_template: Path) -> Path:
    """A private copy of the thinned repository (the writer publishes into it)."""
    root = tmp_path / "engines"
    shutil.copytree(thinned_template, root)
    return root


@pytest.fixture
def confirmation() -> Callable[..., bytes]:
    """``confirmation(clip, label, video_id=None)``: the JSON bytes of one confirmation event."""

    def make(clip: Path, label: str, video_id: str | None = None, **extra: object) -> bytes:
        event = {
            "video_id": video_id or clip.stem,
            "uri": clip.as_uri(),
            "early_action": label,
            "source": "moderator",
            "confirmed_at": "2026-12-02T10:00:00Z",
            **extra,
        }
        return json.dumps(event).encode()

    return make
