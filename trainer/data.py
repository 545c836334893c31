"""Read a synthetic-world dataset: its manifest, and its frames as the serving decoder sees them.

Frames come from ``stream_tagger.decode`` (the worker's own decoder and sampling policy), so the
trainer never sees pixels the worker would not. Decoded frames are cached per (policy, manifest) as
one ``.npy`` under ``DIR/.cache/``; a changed manifest or policy gets a new cache file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy

MANIFEST_NAME = "manifest.jsonl"
CACHE_DIR = ".cache"
DECODE_THREADS = 2


def load_dataset(directory: str | os.PathLike) -> list[dict]:
    """The manifest rows of the dataset in ``directory``, in clip order."""
    with open(Path(directory) / MANIFEST_NAME, encoding="utf-8") as manifest:
        return [json.loads(line) for line in manifest if line.strip()]


def load_frames(directory: str | os.PathLike, policy: SamplingPolicy,
                rows: Sequence[dict] | Sequence[int] | None = None, progress: bool = False) -> np.ndarray:
    """uint8 frames ``[N, T, H, W, 3]`` for ``rows`` (manifest dicts or indices; default: every clip)."""
    directory = Path(directory)
    everything = _cached_frames(directory, policy, progress)
    if rows is None:
        return np.asarray(everything)
    return np.asarray(everything[_indices(directory, rows)])


def cache_path(directory: Path, policy: SamplingPolicy) -> Path:
    """Keyed by the policy, the manifest and each clip's size and mtime: a dataset re-rendered in
    place (same labels, new pixels) must not be served stale frames."""
    digest = hashlib.sha256((directory / MANIFEST_NAME).read_bytes())
    digest.update(policy.model_dump_json().encode())
    for row in load_dataset(directory):
        stat = (directory / row["file"]).stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns};".encode())
    return directory / CACHE_DIR / f"frames-{digest.hexdigest()[:20]}.npy"


def _cached_frames(directory: Path, policy: SamplingPolicy, progress: bool) -> np.ndarray:
    path = cache_path(directory, policy)
    if not path.exists():
        frames = decode_clips(directory, load_dataset(directory), policy, progress)
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as handle:
            np.save(handle, frames)
        os.replace(partial, path)  # readers never see a half-written cache
    return np.load(path, mmap_mode="r")


def decode_clips(directory: Path, rows: Iterable[dict], policy: SamplingPolicy, progress: bool = False) -> np.ndarray:
    """Decode each row's clip with the serving decoder (pyav), ``DECODE_THREADS`` at a time."""
    rows = list(rows)
    decoder = make_decoder("pyav")

    def decode(row: dict) -> np.ndarray:
        return decoder.decode(str(directory / row["file"]), [policy]).frames[policy]

    with ThreadPool(DECODE_THREADS) as pool:
        frames = list(tqdm(pool.imap(decode, rows), total=len(rows), desc="decode", unit="clip", disable=not progress))
    decoder.close()
    shape = (0, policy.frames, policy.height, policy.width, 3)
    return np.stack(frames) if frames else np.empty(shape, np.uint8)


def _indices(directory: Path, rows: Sequence[dict] | Sequence[int]) -> np.ndarray:
    if len(rows) and isinstance(rows[0], dict):
        position = {row["clip_id"]: i for i, row in enumerate(load_dataset(directory))}
        return np.asarray([position[row["clip_id"]] for row in rows], dtype=np.intp)  # type: ignore[index]
    return np.asarray(rows, dtype=np.intp)
