"""Native-resolution fragments (:class:`~stream_tagger.sampling.FragmentPolicy`) cut from a decoded frame.

The patches are sliced out of the frame's own 4:2:0 planes (numpy fancy indexing: no Python loop over
pixels, no full-frame colour conversion), laid out as one small YUV mosaic, and only that mosaic is
converted to RGB, by the same swscale as every other input. A 1080p frame therefore costs a
224×224 conversion, not a 1920×1080 one. Frames in another pixel format (10-bit, 4:4:4, RGB…) are
first converted to yuv420p at their native size, so every video takes the same path to RGB.

Patch positions depend only on the policy and the frame size, so every frame of a clip is cut at
the same places (the patches are aligned in time, as in FAST-VQA), in the worker and in the trainer.
"""

from __future__ import annotations

import functools
import threading

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from stream_tagger.sampling import FragmentPolicy

#: Pixel formats whose planes are sliced directly (what software decoders and NVDEC's download give).
_PLANAR_420 = {"yuv420p", "yuvj420p"}
_SEMI_PLANAR_420 = {"nv12"}

#: One swscale context per decode thread: a context is not thread-safe, and building one for every
#: mosaic (what ``VideoFrame.reformat`` does for a new frame) would cost more than the whole cut.
_converters = threading.local()


def cell_bounds(length: int, grid: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest patch origin inside each of ``grid`` cells along an axis of ``length`` pixels.

    A cell narrower than a patch (a frame smaller than the mosaic) gets the patch centred on it, so
    neighbouring patches overlap instead of leaving the frame.
    """
    edges = np.linspace(0.0, float(length), grid + 1)
    last = length - patch
    low = np.ceil(edges[:-1])
    high = np.floor(edges[1:]) - patch
    centred = np.clip(np.round((edges[:-1] + edges[1:]) / 2 - patch / 2), 0, last)
    narrow = high < low
    low[narrow] = high[narrow] = centred[narrow]
    return np.clip(low, 0, last).astype(np.int64), np.clip(high, 0, last).astype(np.int64)


def patch_origins(policy: FragmentPolicy, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Top and left pixel of every patch, ``[draws, G, G]`` each (even, so chroma lines up).

    Centred when serving; uniform inside each cell when training, from ``(seed, width, height)``
    only, so all frames of a clip share them.
    """
    rows, cols = cell_bounds(height, policy.grid, policy.patch), cell_bounds(width, policy.grid, policy.patch)
    shape = (policy.draws, policy.grid, policy.grid)
    if policy.offsets == "centre":
        top = np.broadcast_to(((rows[0] + rows[1]) // 2)[None, :, None], shape)
        left = np.broadcast_to(((cols[0] + cols[1]) // 2)[None, None, :], shape)
    else:
        rng = np.random.default_rng([policy.seed, width, height])
        top = rng.integers(np.broadcast_to(rows[0][None, :, None], shape), np.broadcast_to(rows[1][None, :, None] + 1, shape))
        left = rng.integers(np.broadcast_to(cols[0][None, None, :], shape), np.broadcast_to(cols[1][None, None, :] + 1, shape))
    return top & ~1, left & ~1


def mosaic_index(top: np.ndarray, left: np.ndarray, size: int, line: int, step: int = 1) -> np.ndarray:
    """Flat offsets, into a plane of ``line`` bytes a row and ``step`` bytes a sample, of the mosaic
    ``[..., G*size, G*size]`` in which the ``size`` px patch at ``top``/``left`` (``[..., G, G]``)
    occupies row block i and column block j."""
    steps = np.arange(size)
    rows = (top[..., None] + steps)[..., :, :, :, None]  # [..., G, G, size, 1]
    cols = (left[..., None] + steps)[..., :, :, None, :]  # [..., G, G, 1, size]
    offsets = rows * line + cols * step  # [..., G, G, size, size]
    lead = top.shape[:-2]
    order = (*range(len(lead)), len(lead), len(lead) + 2, len(lead) + 1, len(lead) + 3)
    side = top.shape[-1] * size
    return offsets.transpose(order).reshape(*lead, side * side)


def cut_fragments(frame: av.VideoFrame, policy: FragmentPolicy) -> np.ndarray:
    """uint8 RGB ``[G*P, G*P, 3]`` (centred) or ``[draws, G*P, G*P, 3]`` (random offsets) of ``frame``."""
    frame = _as_420(frame, policy.patch)
    semi_planar = frame.format.name in _SEMI_PLANAR_420
    lines = tuple(plane.line_size for plane in frame.planes)
    luma, chroma, chroma_offset = _layout(policy, frame.width, frame.height, lines, semi_planar)
    sources = [np.frombuffer(plane, np.uint8) for plane in frame.planes]
    packed = np.empty((policy.draws, luma.shape[1] + 2 * chroma.shape[1]), np.uint8)
    packed[:, : luma.shape[1]] = sources[0][luma]
    u_source, v_source = (sources[1], sources[1]) if semi_planar else (sources[1], sources[2])
    packed[:, luma.shape[1] : luma.shape[1] + chroma.shape[1]] = u_source[chroma]
    packed[:, luma.shape[1] + chroma.shape[1] :] = v_source[chroma + chroma_offset]
    mosaics = np.stack([_to_rgb(frame, mosaic, policy.width) for mosaic in packed])
    return mosaics[0] if policy.offsets == "centre" else mosaics


@functools.lru_cache(maxsize=256)
def _layout(policy: FragmentPolicy, width: int, height: int, lines: tuple[int, ...],
            semi_planar: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat luma and chroma offsets of the mosaic (cached: a stream keeps its size and line sizes),
    and how far V sits from U (the next byte of NV12's interleaved plane, else the same offset)."""
    top, left = patch_origins(policy, width, height)
    half = policy.patch // 2
    luma = mosaic_index(top, left, policy.patch, lines[0])
    chroma = mosaic_index(top // 2, left // 2, half, lines[1], step=2 if semi_planar else 1)
    for array in (luma, chroma):
        array.setflags(write=False)
    return luma, chroma, 1 if semi_planar else 0


def _as_420(frame: av.VideoFrame, patch: int) -> av.VideoFrame:
    """The frame itself when its planes can be sliced; else converted to yuv420p, at least a patch big."""
    width, height = max(frame.width, patch), max(frame.height, patch)
    name = frame.format.name
    if (width, height) == (frame.width, frame.height) and (name in _PLANAR_420 or name in _SEMI_PLANAR_420):
        return frame
    converted = frame.reformat(width=width, height=height, format="yuvj420p" if name.startswith("yuvj") else "yuv420p")
    converted.colorspace = frame.colorspace
    return converted


def _to_rgb(source: av.VideoFrame, packed: np.ndarray, side: int) -> np.ndarray:
    """A packed yuv420p mosaic converted by swscale, under the source frame's colour space."""
    name = "yuvj420p" if source.format.name == "yuvj420p" else "yuv420p"
    mosaic = av.VideoFrame.from_ndarray(packed.reshape(side * 3 // 2, side), format=name)
    mosaic.colorspace = source.colorspace
    converter = getattr(_converters, "rgb", None)
    if converter is None:
        converter = _converters.rgb = VideoReformatter()
    return converter.reformat(mosaic, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()
