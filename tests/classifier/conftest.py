"""Tiny random clips for the classifier tests (no dataset, no video)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.checkpoint import Checkpoints
from trainer.classifier.stages import Budget, Run
from trainer.common import seed_everything
from trainer.datasets.clips import ArraySource, ClipSet
from trainer.distributed import TrainContext

TAGS, CATEGORIES, GRADES = 24, 6, 4


@pytest.fixture
def tiny_clips() -> ClipSet:
    seed_everything(0)
    count = 12
    rng = np.random.default_rng(0)
    tags = (rng.random((count, TAGS)) > 0.8).astype(np.float32)
    frames = rng.integers(0, 256, (count, 8, 16, 16, 3), dtype=np.uint8)
    return ClipSet(ArraySource(frames), np.arange(count), {
        "tags": tags, "has_tags": np.ones(count, bool), "category": rng.integers(0, CATEGORIES, count),
        "quality": rng.integers(0, GRADES, count), "teacher_tags": rng.random((count, TAGS)).astype(np.float32)})


def tiny_run(**budget) -> Run:
    """One CPU rank, no checkpoints: what a unit test of a stage needs."""
    return Run(TrainContext(torch.device("cpu")), Checkpoints(None, "test", resume=False, is_main=True), seed=0,
               budget=Budget(**budget))
