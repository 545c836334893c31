"""The cached views of a clip: its frames under a sampling policy, decoded by the serving decoder.

Frames come from ``stream_tagger.decode`` (the worker's own decoder and policy), so the trainer never
sees pixels the worker would not. A clip that fails to decode is recorded with its reason (and left
out by the trainers, with a line saying so); it never stops the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import FramePolicy
from trainer.datasets.cache import ShardedArray, build_cache
from trainer.datasets.format import Dataset

DECODE_THREADS = 2


@dataclass(frozen=True)
class FramesView:
    """What the serving decoder gives for ``policy``: resized frames, or a centred fragments mosaic."""

    policy: FramePolicy
    name: str = "frames"

    @property
    def key(self) -> str:
        return "frames:" + self.policy.model_dump_json()

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def item_shape(self) -> tuple[int, ...]:
        return (self.policy.frames, self.policy.height, self.policy.width, 3)

    def compute(self, paths: Sequence[Path]) -> tuple[np.ndarray, dict[int, str]]:
        return decode_clips(paths, self.policy)


def decode_clips(paths: Sequence[Path], policy: FramePolicy) -> tuple[np.ndarray, dict[int, str]]:
    """uint8 ``[N, T, H, W, 3]`` frames of ``paths`` (zeros where decoding failed) and the failures."""
    decoder = make_decoder("pyav")
    shape = (policy.frames, policy.height, policy.width, 3)

    def decode(path: Path) -> np.ndarray | str:
        try:
            return decoder.decode(str(path), [policy]).frames[policy]
        except Exception as exc:  # noqa: BLE001 - one bad clip is a reported row, never the end of the cache
            return f"{type(exc).__name__}: {exc}"

    with ThreadPool(DECODE_THREADS) as pool:
        results = pool.map(decode, list(paths))
    decoder.close()
    frames = np.zeros((len(results), *shape), np.uint8)
    failures = {}
    for i, result in enumerate(results):
        if isinstance(result, str):
            failures[i] = result
        else:
            frames[i] = result
    return frames, failures


def cached_view(dataset: Dataset, view, rank: int = 0, world: int = 1, log=print) -> ShardedArray:
    """Every clip of ``dataset`` under ``view``, built into (or read from) the dataset's cache."""
    return build_cache(dataset.root, [row.file for row in dataset.rows], view, rank, world, log)
