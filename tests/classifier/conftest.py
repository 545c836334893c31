"""Tiny random clips for the classifier tests (no dataset, no video)."""

from __future__ import annotations

import pytest
import torch

from trainer.classifier.clips import ClipSet
from trainer.common import seed_everything

TAGS, CATEGORIES, GRADES = 24, 6, 4


@pytest.fixture
def tiny_clips() -> ClipSet:
    seed_everything(0)
    count = 12
    tags = (torch.rand(count, TAGS) > 0.8).float()
    return ClipSet(frames=torch.randint(0, 256, (count, 8, 16, 16, 3), dtype=torch.uint8), tags=tags,
                   true_tags=tags.clone(), category=torch.randint(0, CATEGORIES, (count,)),
                   quality=torch.randint(0, GRADES, (count,)), teacher_tags=torch.rand(count, TAGS))
