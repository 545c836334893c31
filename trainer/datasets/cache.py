"""The on-disk cache of what the networks read: decoded frames, or encoder features, in shards.

A *view* (frames under one sampling policy, or one encoder's features) of a dataset is cached as
``DIR/.cache/<view>/shard-<k>-<digest>.npy`` files of ``SHARD_CLIPS`` clips each, in manifest order.
The digest covers the view and each clip's file, size and mtime, so a re-rendered clip rebuilds its
shard only. Every shard is:

- written once: assembled in a temporary file and renamed into place (readers see whole shards);
- safe to build from several processes: a shard is built under an exclusive ``flock``; a process
  that finds it locked builds other shards first and then waits for it (torchrun ranks split the work);
- resumable after a kill: finished shards stay, a killed builder's lock dies with it.

Reading is streamed: one clip is one ``pread`` at a computed offset, so memory does not grow with the
number of clips (a memory map would keep every touched page resident).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

CACHE_DIR = ".cache"
SHARD_CLIPS = 256


class View(Protocol):
    """What is cached per clip: a fixed shape and dtype, computed from the clips' files."""

    name: str  # folder-name prefix, e.g. "frames"
    key: str  # everything that changes the cached values (policy, encoder digest)
    dtype: np.dtype
    item_shape: tuple[int, ...]

    def compute(self, paths: Sequence[Path]) -> tuple[np.ndarray, dict[int, str]]:
        """Values ``[len(paths), *item_shape]`` and the failures {position: reason} (zeros there)."""
        ...


class ShardedArray:
    """Read-only clips of a built cache: ``read(row)`` by manifest row index."""

    def __init__(self, shards: list[Path], counts: list[int], dtype: np.dtype, item_shape: tuple[int, ...],
                 failed: dict[int, str], shard_clips: int = SHARD_CLIPS):
        self.shards, self.counts, self.shard_clips = shards, counts, shard_clips
        self.dtype, self.item_shape = np.dtype(dtype), tuple(item_shape)
        self.failed = failed
        self._item_bytes = int(np.prod(item_shape)) * self.dtype.itemsize
        self._offsets = [_data_offset(path) for path in shards]
        self._fds: dict[int, int] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return sum(self.counts)

    def read(self, row: int) -> np.ndarray:
        shard, local = divmod(int(row), self.shard_clips)
        data = os.pread(self._fd(shard), self._item_bytes, self._offsets[shard] + local * self._item_bytes)
        return np.frombuffer(data, self.dtype).reshape(self.item_shape)

    def read_many(self, rows: Sequence[int]) -> np.ndarray:
        return np.stack([self.read(row) for row in rows]) if len(rows) else np.empty((0, *self.item_shape), self.dtype)

    def _fd(self, shard: int) -> int:
        if os.getpid() != self._pid:  # a forked loader worker opens its own descriptors
            self._fds, self._pid = {}, os.getpid()
        if shard not in self._fds:
            self._fds[shard] = os.open(self.shards[shard], os.O_RDONLY)
        return self._fds[shard]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}}


def view_dir(dataset_root: Path, view: View) -> Path:
    return Path(dataset_root) / CACHE_DIR / f"{view.name}-{_digest(view.key)[:12]}"


def build_cache(dataset_root: Path, files: Sequence[str], view: View, rank: int = 0, world: int = 1,
                log=print, shard_clips: int = SHARD_CLIPS) -> ShardedArray:
    """Build (or reuse) every shard of ``view`` for ``files`` (paths relative to the dataset); returns the reader.

    Ranks start at different shards so that ``world`` processes split the work.
    """
    folder = view_dir(dataset_root, view)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [list(range(s, min(s + shard_clips, len(files)))) for s in range(0, len(files), shard_clips)]
    names = [f"shard-{k:05d}-{_shard_digest(dataset_root, files, chunk, view, shard_clips)}"
             for k, chunk in enumerate(chunks)]
    order = list(range(len(chunks)))
    start = (rank * len(chunks)) // max(world, 1)
    waiting = []
    for k in order[start:] + order[:start]:
        if not _try_build(folder, names[k], dataset_root, [files[i] for i in chunks[k]], view, block=False, log=log):
            waiting.append(k)
    for k in waiting:  # locked by another process: wait for it, or finish what a killed one left
        _try_build(folder, names[k], dataset_root, [files[i] for i in chunks[k]], view, block=True, log=log)
    failed = {}
    for k, name in enumerate(names):
        for local, reason in _read_failures(folder / f"{name}.json").items():
            failed[k * shard_clips + local] = reason
    return ShardedArray([folder / f"{n}.npy" for n in names], [len(c) for c in chunks], view.dtype,
                        view.item_shape, failed, shard_clips)


def _try_build(folder: Path, name: str, root: Path, files: list[str], view: View, block: bool, log) -> bool:
    target = folder / f"{name}.npy"
    if target.exists():
        return True
    with _locked(folder / f"{name}.lock", block) as held:
        if not held:
            return False
        if target.exists():  # built by another process while we waited
            return True
        started = time.monotonic()
        values, failures = view.compute([Path(root) / f for f in files])
        _write_atomic(folder / f"{name}.json", json.dumps({"failed": failures}).encode())
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        with open(partial, "wb") as handle:
            np.save(handle, np.ascontiguousarray(values, dtype=view.dtype))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        log(f"cache {folder.name}: {name} ({len(files)} clips, {len(failures)} failed) in "
            f"{time.monotonic() - started:.1f} s")
    return True


@contextlib.contextmanager
def _locked(path: Path, block: bool) -> Iterator[bool]:
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


def _read_failures(path: Path) -> dict[int, str]:
    if not path.is_file():
        return {}
    return {int(k): v for k, v in json.loads(path.read_text())["failed"].items()}


def _shard_digest(root: Path, files: Sequence[str], chunk: list[int], view: View, shard_clips: int) -> str:
    digest = hashlib.sha256(f"{view.key}|{shard_clips}".encode())
    for i in chunk:
        try:
            stat = (Path(root) / files[i]).stat()
            digest.update(f"{files[i]}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{files[i]}:missing;".encode())
    return digest.hexdigest()[:16]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _data_offset(path: Path) -> int:
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        read_header(handle)
        return handle.tell()
