"""The sharded cache: written once, streamed, safe from several processes, resumable after a kill."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from trainer.datasets.cache import build_cache, view_dir


@dataclass(frozen=True)
class CountingView:
    """Each clip's value is its file's bytes summed; every computed shard is logged to ``log``."""

    log: str
    fail_after: int = -1  # crash (like a kill) once this many shards were built in this process
    name: str = "counting"
    key: str = "counting-v1"
    dtype: type = np.int64
    item_shape: tuple = (2,)

    def compute(self, paths):
        with open(self.log, "a") as handle:
            handle.write(",".join(p.name for p in paths) + "\n")
        built = len(Path(self.log).read_text().splitlines())
        if built == self.fail_after + 1:
            os._exit(9)  # no cleanup, no finally: what a SIGKILL leaves behind
        values = np.array([[sum(p.read_bytes()), len(p.name)] if p.exists() else [0, 0] for p in paths], np.int64)
        return values, {i: "missing" for i, p in enumerate(paths) if not p.exists()}


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    names = [f"clip{i:02d}.bin" for i in range(10)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([i, i + 1, 7]))
    return names


def expected(root: Path, names: list[str]) -> np.ndarray:
    return np.array([[sum((root / n).read_bytes()), len(n)] for n in names])


def test_shards_are_written_once_and_read_back_clip_by_clip(tmp_path, files):
    view = CountingView(str(tmp_path / "log.txt"))
    cache = build_cache(tmp_path, files, view, shard_clips=4)
    again = build_cache(tmp_path, files, view, shard_clips=4)
    assert len(Path(view.log).read_text().splitlines()) == 3  # 4 + 4 + 2 clips, built once
    assert np.array_equal(again.read_many(range(10)), expected(tmp_path, files))
    assert np.array_equal(cache.read(9), expected(tmp_path, files)[9])
    assert sorted(p.name.split("-")[1] for p in view_dir(tmp_path, view).glob("*.npy")) == ["00000", "00001", "00002"]


def test_a_changed_clip_rebuilds_its_shard_only_and_failures_are_recorded(tmp_path, files):
    view = CountingView(str(tmp_path / "log.txt"))
    build_cache(tmp_path, files, view, shard_clips=4)
    (tmp_path / files[5]).write_bytes(b"new pixels, longer")
    (tmp_path / files[9]).unlink()
    cache = build_cache(tmp_path, files, view, shard_clips=4)
    log = Path(view.log).read_text().splitlines()
    assert log[3:] == [",".join(files[4:8]), ",".join(files[8:])]
    assert cache.read(5)[0] == sum(b"new pixels, longer") and cache.failed == {9: "missing"}


def _build(root: str, names: list[str], log: str, rank: int, world: int) -> None:
    build_cache(Path(root), names, CountingView(log), rank=rank, world=world, shard_clips=2)


def test_two_processes_build_each_shard_exactly_once(tmp_path, files):
    log = str(tmp_path / "log.txt")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_build, args=(str(tmp_path), files, log, rank, 2)) for rank in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    built = Path(log).read_text().splitlines()
    assert sorted(built) == sorted(",".join(files[i:i + 2]) for i in range(0, 10, 2))  # 5 shards, no repeat
    cache = build_cache(tmp_path, files, CountingView(log), shard_clips=2)
    assert np.array_equal(cache.read_many(range(10)), expected(tmp_path, files))


def test_a_killed_build_resumes_with_the_shards_it_had_not_finished(tmp_path, files):
    # Given a builder killed while computing its third shard
    log = str(tmp_path / "log.txt")
    process = multiprocessing.get_context("spawn").Process(
        target=build_cache, args=(tmp_path, files, CountingView(log, fail_after=2)), kwargs={"shard_clips": 2})
    process.start()
    process.join(60)
    assert process.exitcode == 9
    assert len(list(view_dir(tmp_path, CountingView(log)).glob("*.npy"))) == 2
    # When the build runs again
    cache = build_cache(tmp_path, files, CountingView(log), shard_clips=2)
    # Then only the three unfinished shards are computed (the killed one again), and every clip reads right
    assert Path(log).read_text().splitlines()[3:] == [",".join(files[i:i + 2]) for i in (4, 6, 8)]
    assert np.array_equal(cache.read_many(range(10)), expected(tmp_path, files))
