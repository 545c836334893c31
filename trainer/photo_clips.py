"""``stream-tagger-train make-photo-clips``: real photographs, moved by pans and zooms, really encoded.

A dataset producer that shares nothing with the synthetic world: the photographs that scikit-image
ships (``skimage/data``), one class per photograph, each clip a random pan and zoom over its photo,
encoded with H.264 by PyAV. It writes a folder-per-class tree (``OUT/<class>/<class>-<n>.mp4``), the
input of ``stream-tagger-train import folders``.

    stream-tagger-train make-photo-clips --out data/photos-src --clips-per-class 60 --seed 5
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

#: class name -> file in skimage/data (colour photographs and one greyscale, all shipped with the wheel)
PHOTOS = {"astronaut": "astronaut.png", "cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
          "galaxies": "hubble_deep_field.jpg", "tissue": "ihc.png", "motorcycle": "motorcycle_left.png",
          "retina": "retina.jpg", "cameraman": "camera.png"}


def photo(name: str) -> Image.Image:
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / PHOTOS[name]).convert("RGB")


def pan_zoom_frames(image: Image.Image, frames: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[frames, H, W, 3]``: a crop window that drifts across the photo and zooms in or out."""
    width, height = image.size
    side = min(width, height)
    start_scale, end_scale = rng.uniform(0.3, 0.7, 2) * side
    start = rng.uniform(0, 1, 2)
    end = np.clip(start + rng.uniform(-0.35, 0.35, 2), 0, 1)
    out = np.empty((frames, size[1], size[0], 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        crop = start_scale + (end_scale - start_scale) * t
        cx, cy = start + (end - start) * t
        left, top = cx * (width - crop), cy * (height - crop)
        box = (left, top, left + crop, top + crop * size[1] / size[0])
        out[i] = np.asarray(image.resize(size, Image.BILINEAR, box=box))
    return out


def encode(frames: np.ndarray, path: Path, fps: int, crf: int) -> None:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(crf)}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def make_photo_clips(out: Path, clips_per_class: int, seed: int, classes: list[str] | None = None,
                     size: tuple[int, int] = (160, 160), seconds: float = 2.0, fps: int = 25, crf: int = 23) -> int:
    written = 0
    for k, name in enumerate(classes or list(PHOTOS)):
        image = photo(name)
        (out / name).mkdir(parents=True, exist_ok=True)
        for n in range(clips_per_class):
            rng = np.random.default_rng([seed, k, n])
            encode(pan_zoom_frames(image, round(seconds * fps), size, rng), out / name / f"{name}-{n:04d}.mp4", fps, crf)
            written += 1
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write (one sub-folder per class)")
    parser.add_argument("--clips-per-class", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--classes", nargs="+", choices=sorted(PHOTOS), help="default: all")
    parser.add_argument("--size", type=int, nargs=2, default=(160, 160), metavar=("W", "H"))
    parser.add_argument("--seconds", type=float, default=2.0)


def run(args: argparse.Namespace) -> int:
    count = make_photo_clips(args.out, args.clips_per_class, args.seed, args.classes, tuple(args.size), args.seconds)
    print(f"wrote {count} clips under {args.out}")
    return 0
