"""A set of clips for training: where their inputs are read from, and their per-clip targets.

``ClipSet`` holds no pixels: ``source.read(row)`` streams one clip's frames (or features) from the
cache, and ``targets`` are small per-clip arrays (label indices, tag vectors). The torch side is
:class:`ClipDataset` + :func:`clip_loader`: a DataLoader with worker processes and a
DistributedSampler, so every rank reads its own share of an epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from trainer.distributed import TrainContext


class ClipSource(Protocol):
    dtype: np.dtype
    item_shape: tuple[int, ...]

    def read(self, row: int) -> np.ndarray: ...


class ArraySource:
    """Clips held in memory (tests, and tiny sets)."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.dtype, self.item_shape = values.dtype, tuple(values.shape[1:])

    def read(self, row: int) -> np.ndarray:
        return self.values[row]


@dataclass
class ClipSet:
    source: ClipSource
    rows: np.ndarray  # int64 [N]: row indices into ``source``
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # each [N, ...], aligned with ``rows``
    #: further inputs of the same rows (another sampling policy's frames), batched under their name
    extra_sources: dict[str, ClipSource] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, positions: Sequence[int] | np.ndarray) -> ClipSet:
        positions = np.asarray(positions, dtype=np.int64)
        return ClipSet(self.source, self.rows[positions], {k: v[positions] for k, v in self.targets.items()},
                       self.extra_sources)

    def where(self, mask: np.ndarray) -> ClipSet:
        return self.subset(np.flatnonzero(mask))

    def with_targets(self, **more: np.ndarray) -> ClipSet:
        return ClipSet(self.source, self.rows, {**self.targets, **more}, self.extra_sources)

    def with_source(self, name: str, source: ClipSource) -> ClipSet:
        return ClipSet(self.source, self.rows, self.targets, {**self.extra_sources, name: source})

    def inputs(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([self.source.read(int(self.rows[p])) for p in positions])


class ClipDataset(Dataset):
    def __init__(self, clips: ClipSet):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, position: int) -> dict[str, np.ndarray]:
        clips = self.clips
        row = int(clips.rows[position])
        item = {"inputs": np.array(clips.source.read(row)), "position": position}
        item.update({name: np.array(source.read(row)) for name, source in clips.extra_sources.items()})
        item.update({name: values[position] for name, values in clips.targets.items()})
        return item


def clip_loader(clips: ClipSet, batch_size: int, ctx: TrainContext, seed: int = 0, epoch: int = 0,
                shuffle: bool = True) -> DataLoader:
    """One epoch of ``clips`` for this rank: shuffled by (seed, epoch), identical however it is resumed."""
    sampler = DistributedSampler(ClipDataset(clips), num_replicas=ctx.world, rank=ctx.rank, shuffle=shuffle,
                                 seed=seed)
    sampler.set_epoch(epoch)
    workers = ctx.loader_workers if len(clips) > batch_size else 0
    # its own generator: the workers' seeds must not come from (and advance) torch's global one, or a
    # resumed run, which skips finished stages, would initialise the next networks differently
    generator = torch.Generator().manual_seed(seed * 7919 + epoch)
    return DataLoader(ClipDataset(clips), batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=ctx.device.type == "cuda", persistent_workers=False, generator=generator)


def rank_positions(count: int, ctx: TrainContext) -> np.ndarray:
    """This rank's share of ``count`` positions for inference (every position exactly once over ranks)."""
    return np.arange(ctx.rank, count, ctx.world)


def to_device(batch: dict[str, torch.Tensor], ctx: TrainContext) -> dict[str, torch.Tensor]:
    return {k: v.to(ctx.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
