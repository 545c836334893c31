"""A dataset folder as tensors: uint8 frames and label indices/targets for the classifier."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stream_tagger.sampling import SamplingPolicy
from trainer.data import load_dataset, load_frames
from video_world.labels import CATEGORIES, QUALITY_GRADES, TAGS

POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


@dataclass
class ClipSet:
    frames: torch.Tensor  # uint8 [N, T, H, W, 3]
    tags: torch.Tensor  # float [N, tags], the training labels (noisy when the dataset is)
    true_tags: torch.Tensor  # float [N, tags]
    category: torch.Tensor  # int64 [N]
    quality: torch.Tensor  # int64 [N]
    teacher_tags: torch.Tensor | None = None  # float [N, tags], the label teacher's probabilities

    def __len__(self) -> int:
        return len(self.category)

    def subset(self, index: np.ndarray) -> ClipSet:
        index = torch.as_tensor(index)
        teacher = None if self.teacher_tags is None else self.teacher_tags[index]
        return ClipSet(self.frames[index], self.tags[index], self.true_tags[index], self.category[index],
                       self.quality[index], teacher)

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Index batches, shuffled when a generator is given."""
        order = torch.randperm(len(self), generator=generator) if generator is not None else torch.arange(len(self))
        yield from order.split(batch_size)


def multi_hot(names: list[str]) -> list[float]:
    return [1.0 if tag in names else 0.0 for tag in TAGS]


def load_clips(directory: Path, progress: bool = True) -> ClipSet:
    rows = load_dataset(directory)
    frames = torch.from_numpy(np.array(load_frames(directory, POLICY, progress=progress)))  # writable copy
    return ClipSet(frames=frames,
                   tags=torch.tensor([multi_hot(r["tags"]) for r in rows]),
                   true_tags=torch.tensor([multi_hot(r["true_tags"]) for r in rows]),
                   category=torch.tensor([CATEGORIES.index(r["category"]) for r in rows]),
                   quality=torch.tensor([QUALITY_GRADES.index(r["quality"]) for r in rows]))
