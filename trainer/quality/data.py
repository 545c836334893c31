"""The quality branch's view of a dataset: native-resolution fragments, decoded by the serving decoder.

Training clips are cached with ``draws`` random-offset mosaics each (:class:`FragmentDrawsView`,
``FragmentPolicy.training``: every patch at a random place inside its grid cell, the same places for
all frames of a clip), and :class:`DrawSource` hands the networks one of them at random on every
read, so each epoch sees other patches of the same clips. Evaluation clips are cached as the worker
serves them, by the frames view of the served (centred) policy: ``FramesView(policy)``. Both come
from ``stream_tagger.decode``, so the trainer never sees pixels the worker would not.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import torch

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import FragmentPolicy
from trainer.datasets.clips import ClipSet, ClipSource
from trainer.datasets.format import Dataset
from trainer.datasets.labels import class_index, coverage

DECODE_THREADS = 2


@dataclass(frozen=True)
class FragmentDrawsView:
    """``draws`` random-offset mosaics per clip of the served (centred) ``policy``: ``[T, draws, H, W, 3]``."""

    policy: FragmentPolicy
    draws: int
    name: str = "fragment-draws"

    @property
    def key(self) -> str:
        return f"fragment-draws:{self.policy.model_dump_json()}:draws={self.draws}"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def item_shape(self) -> tuple[int, ...]:
        return (self.policy.frames, self.draws, self.policy.height, self.policy.width, 3)

    def clip_policy(self, path: Path) -> FragmentPolicy:
        """The policy one clip is decoded with: its random draws are seeded by its file name."""
        return self.policy.training(self.draws, seed=zlib.crc32(Path(path).name.encode()))

    def compute(self, paths: Sequence[Path]) -> tuple[np.ndarray, dict[int, str]]:
        decoder = make_decoder("pyav")

        def decode(path: Path) -> np.ndarray | str:
            policy = self.clip_policy(path)
            try:
                return decoder.decode(str(path), [policy]).frames[policy]
            except Exception as exc:  # noqa: BLE001 - one bad clip is a reported row, never the end of the cache
                return f"{type(exc).__name__}: {exc}"

        with ThreadPool(DECODE_THREADS) as pool:
            results = pool.map(decode, list(paths))
        values = np.zeros((len(results), *self.item_shape), np.uint8)
        failures = {}
        for i, result in enumerate(results):
            if isinstance(result, str):
                failures[i] = result
            else:
                values[i] = result
        return values, failures


class DrawSource:
    """One random draw ``[T, H, W, 3]`` of a cached ``[T, draws, H, W, 3]`` clip per read.

    The choice is reproducible: it follows torch's seed of the reading process (a DataLoader seeds
    each worker from the epoch) and the number of reads this copy has made.
    """

    def __init__(self, cached: ClipSource):
        self.cached = cached
        self.dtype = cached.dtype
        self.item_shape = (cached.item_shape[0], *cached.item_shape[2:])
        self.failed = getattr(cached, "failed", {})
        self._reads = 0

    def read(self, row: int) -> np.ndarray:
        self._reads += 1
        rng = np.random.default_rng([torch.initial_seed() % 2**63, int(row), self._reads])
        return self.cached.read(row)[:, int(rng.integers(self.cached.item_shape[1]))]


def quality_clips(dataset: Dataset, rows: Sequence[int], grades: list[str], source: ClipSource, log=print) -> ClipSet:
    """The rows with a grade that decoded, with their grade index as the ``quality`` target."""
    failed = getattr(source, "failed", {})
    for i in sorted(set(rows) & set(failed)):
        log(f"left out {dataset.rows[i].clip_id}: could not be decoded ({failed[i]})")
    rows = [i for i in rows if i not in failed]
    for line in coverage(dataset, rows, "quality", grades).report("quality"):
        log(line)
    quality = class_index(dataset, rows, "quality", grades)
    keep = np.flatnonzero(quality >= 0)
    if len(keep) < len(rows):
        log(f"left out {len(rows) - len(keep)} row(s) without a quality grade")
    return ClipSet(source, np.asarray(rows, np.int64)[keep], {"quality": quality[keep]})
