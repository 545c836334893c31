"""Small synthetic-world datasets, rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from video_world.dataset import generate_dataset

#: Tiny clips keep the generator tests fast; the labels do not depend on the size.
TINY = {"width": 96, "height": 96, "seconds": 1.2, "fps": 25}


@pytest.fixture(scope="session")
def tiny_options() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "tiny"
    generate_dataset(out, clips=8, seed=11, workers=1, **TINY)
    return out
