"""Tiny synthetic clips encoded with PyAV, for the demo when the trainer's world generator is absent."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

_COLOURS = ((200, 40, 40), (40, 160, 60), (40, 70, 200), (220, 200, 40), (150, 60, 170), (30, 170, 170))


def write_clip(path: Path, index: int, seconds: float = 2.0, fps: int = 25, size: int = 96) -> None:
    """A coloured square crossing a gradient background; H.264 in MP4."""
    base = np.linspace(0, 120, size, dtype=np.uint8)[None, :, None].repeat(size, 0).repeat(3, 2)
    colour = np.array(_COLOURS[index % len(_COLOURS)], np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for step in range(int(seconds * fps)):
            image = base.copy()
            x = (step * 3 + index * 11) % (size - 24)
            image[30:54, x : x + 24] = colour
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def make_clips(folder: Path, count: int) -> list[dict]:
    """Write ``count`` clips; rows shaped like the world manifest (no labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        path = folder / f"synth-{index:03d}.mp4"
        write_clip(path, index)
        rows.append({"clip_id": path.stem, "path": str(path), "title": f"Synthetic clip {index}"})
    return rows
