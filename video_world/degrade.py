"""Quality grades as pixel damage, strong enough to survive a 160->64 downscale and H.264.

excellent: untouched (and a generous bitrate, see encode.GRADE_CRF);
good: visible temporal gaussian noise;
fair: blur (a low-resolution copy upscaled smoothly);
poor: blocky upscaled low resolution + noise, then starved of bits (the codec smears the noise
      into blotches and adds its own blocking).
"""

from __future__ import annotations

import numpy as np

NOISE_BANK = 12
#: Size (at 160 px) of the square blocks of a poor clip's upscaled low resolution: 2.4 px at 64.
POOR_BLOCK_PX = 6


def degrade(clip: np.ndarray, quality: str, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Damage a float32 clip ``[T, H, W, 3]`` in place (values 0..255) and return it."""
    if quality == "good":
        _add_noise(clip, rng.uniform(12, 18), rng)
    elif quality == "fair":
        factor = max(2, round(rng.uniform(3.0, 4.0) * scale))
        clip[:] = _smooth(_downscale(clip, factor), factor, clip.shape[1], clip.shape[2])
    elif quality == "poor":
        factor = max(2, round(POOR_BLOCK_PX * scale))
        clip[:] = _blocky(_downscale(clip, factor), factor, clip.shape[1], clip.shape[2])
        _add_noise(clip, rng.uniform(16, 22), rng)
    return clip


def _add_noise(clip: np.ndarray, sigma: float, rng: np.random.Generator) -> None:
    """Temporal noise: each frame gets one of a few noise fields, randomly picked and flipped.

    Drawing a fresh field per frame costs more than rendering the clip; a small bank, mirrored
    four ways, is just as unpredictable to a model that sees 8 frames.
    """
    bank = rng.standard_normal((NOISE_BANK,) + clip.shape[1:], dtype=np.float32) * np.float32(sigma)
    picks, flips = rng.integers(NOISE_BANK, size=len(clip)), rng.integers(4, size=len(clip))
    for frame, pick, flip in zip(clip, picks, flips):
        field = bank[pick]
        frame += field[:: 1 - 2 * (flip & 1), :: 1 - (flip & 2)]


def _downscale(clip: np.ndarray, factor: int) -> np.ndarray:
    """Box-average ``factor`` x ``factor`` blocks (edges padded by replication)."""
    pad_h, pad_w = -clip.shape[1] % factor, -clip.shape[2] % factor
    if pad_h or pad_w:
        clip = np.pad(clip, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    rows = sum(clip[:, i::factor] for i in range(factor))
    return sum(rows[:, :, i::factor] for i in range(factor)) / np.float32(factor * factor)


def _blocky(small: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upscale: visible square blocks."""
    return small.repeat(factor, axis=1).repeat(factor, axis=2)[:, :height, :width]


def _smooth(small: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Linear upscale by an integer factor (a blur of the original)."""
    return _linear(_linear(small, factor, axis=1), factor, axis=2)[:, :height, :width]


def _linear(array: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Output sample ``q * factor + r`` mixes inputs q-1, q, q+1 with weights that depend on r only."""
    n = array.shape[axis]
    edge = [slice(None)] * array.ndim
    first, last = list(edge), list(edge)
    first[axis], last[axis] = slice(0, 1), slice(n - 1, n)
    padded = np.concatenate([array[tuple(first)], array, array[tuple(last)]], axis=axis)
    shape = list(array.shape)
    shape[axis] = n * factor
    out = np.empty(shape, dtype=np.float32)
    for r in range(factor):
        offset = (r + 0.5) / factor - 0.5
        low, weight = (1, offset) if offset >= 0 else (0, 1 + offset)
        below, above, target = list(edge), list(edge), list(edge)
        below[axis], above[axis], target[axis] = slice(low, low + n), slice(low + 1, low + 1 + n), slice(r, None, factor)
        lo, hi = padded[tuple(below)], padded[tuple(above)]
        out[tuple(target)] = lo + np.float32(weight) * (hi - lo)
    return out
