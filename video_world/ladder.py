"""Real degradations of an upload: capture and scaling filters, then real encoders along their rate ladder.

A :class:`Recipe` is what happened to a clip between the camera and the platform, in that order:

1. capture: sensor noise (ffmpeg ``noise``, temporal), defocus blur (``gblur``), dropped frames
   (every other or every third frame repeated: ``fps`` down, then back up);
2. a low-resolution upload scaled back up (``scale`` down by a factor, then up with bilinear);
3. optionally a first encode (a phone's H.264), decoded again: double compression;
4. the platform encode: x264, x265 or VP9, at a constant-quality step (CRF) or a target bitrate,
   down to starved rates.

The recipe only shapes the damage; the clip's grade comes from measuring it (``video_world.measure``).
Every encoder runs single-threaded with bit-exact flags, so a seed gives the same bytes run to run.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: codec -> (ffmpeg encoder, container, extension)
ENCODERS: dict[str, tuple[str, str, str]] = {
    "h264": ("libx264", "mp4", "mp4"),
    "hevc": ("libx265", "mp4", "mp4"),
    "vp9": ("libvpx-vp9", "webm", "webm"),
}
CODEC_WEIGHTS = {"h264": 0.5, "hevc": 0.25, "vp9": 0.25}
#: Bits per pixel per frame of the bitrate ladder, generous to starved (x264 at 0.2 bpp is
#: transparent on most content; at 0.002 bpp blocks are plainly visible).
BITRATE_LADDER_BPP = (0.2, 0.1, 0.05, 0.025, 0.012, 0.006, 0.003, 0.0015)
#: CRF steps on x264's scale (x265 and VP9 are mapped from it in ``_rate_options``).
CRF_LADDER = (14, 18, 22, 26, 30, 34, 38, 42, 46, 51)
#: Per texture (video_world.texture.TEXTURES), the centre of each severity's rate step on the
#: 10-step ladder. A texture's appetite for bits sets where the grade boundaries fall: on ``photo``
#: x264 leaves excellent above CRF 18 and reaches poor from CRF 34 (12 clips, 2026-12-04, before
#: its contrast map), where ``wide`` textures stay excellent longer. The centres shift the grades
#: toward balance; on ``photo`` poor still leads (docs/quality.md §4).
SEVERITY_CENTRES: dict[str, tuple[float, float, float, float]] = {
    "wide": (1, 3, 5, 7.5),
    "photo": (-0.3, 1.5, 3.5, 6.5),
    "photo_fixed": (-0.3, 1.5, 3.5, 6.5),
}


@dataclass(frozen=True)
class Pristine:
    """The lossless reference of a clip: raw yuv420p frames on disk (no codec to run twice per clip)."""

    path: Path
    width: int
    height: int
    fps: int

    def input_args(self) -> list[str]:
        return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{self.width}x{self.height}", "-r", str(self.fps),
                "-i", str(self.path)]


@dataclass(frozen=True)
class Recipe:
    codec: str
    crf: int | None = None
    bpp: float | None = None
    noise: int = 0  # ffmpeg noise strength (0..100; ~ uniform amplitude in levels)
    blur: float = 0.0  # gaussian sigma, px
    rescale: float = 1.0  # downscale factor of a low-resolution upload (1 = none)
    drop: int = 1  # keep one frame in ``drop`` (1 = none)
    first_crf: int | None = None  # an earlier H.264 encode (double compression)

    def describe(self) -> dict:
        """The fields that differ from an untouched encode (what the manifest row records)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {key: value for key, value in dataclasses.asdict(self).items()
                if key == "codec" or value != defaults[key]}

    @property
    def extension(self) -> str:
        return ENCODERS[self.codec][2]


def draw_recipe(severity: int, rng: np.random.Generator, texture: str = "wide") -> Recipe:
    """A recipe whose expected damage grows with ``severity`` (0 mild … 3 heavy) on ``texture``.

    Severity is a prior only (the clip's label is measured): each level mixes a rate step with
    some chance of each capture filter, so every kind of damage appears at every level.
    """
    codec = str(rng.choice(list(CODEC_WEIGHTS), p=list(CODEC_WEIGHTS.values())))
    centre = SEVERITY_CENTRES[texture][severity]  # position on a 10-step ladder
    step = int(np.clip(round(rng.normal(centre, 1.0)), 0, 9))
    if rng.random() < 0.5:
        rate = {"crf": CRF_LADDER[step]}
    else:
        rate = {"bpp": BITRATE_LADDER_BPP[int(np.clip(step - 2, 0, len(BITRATE_LADDER_BPP) - 1))]}
    chance = (0.08, 0.2, 0.3, 0.35)[severity]
    filters: dict = {}
    if rng.random() < chance:
        filters["noise"] = int(rng.uniform(3, 8 + 6 * severity))
    if rng.random() < chance:
        filters["blur"] = round(float(rng.uniform(0.4, 0.8 + 0.8 * severity)), 2)
    if rng.random() < chance:
        filters["rescale"] = round(float(rng.uniform(1.3, 1.6 + 0.8 * severity)), 2)
    if rng.random() < chance / 2:
        filters["drop"] = int(rng.integers(2, 4))
    if rng.random() < chance:
        filters["first_crf"] = int(rng.integers(18, 26 + 4 * severity))
    return Recipe(codec=codec, **rate, **filters)


def apply_recipe(recipe: Recipe, pristine: Pristine, out: Path, seed: int) -> None:
    """Degrade the ``pristine`` clip into the file ``out`` (same size and frame count)."""
    filters = _filters(recipe, pristine, seed)
    source = pristine.input_args()
    first = out.with_name(out.stem + ".first.mp4")
    try:
        if recipe.first_crf is not None:
            run_ffmpeg([*source, *filters, *_encoder_options(Recipe("h264", crf=recipe.first_crf), pristine),
                        str(first)])
            source, filters = ["-i", str(first)], []
        run_ffmpeg([*source, *filters, *_encoder_options(recipe, pristine), str(out)])
    finally:
        first.unlink(missing_ok=True)


def _filters(recipe: Recipe, pristine: Pristine, seed: int) -> list[str]:
    chain: list[str] = []
    if recipe.noise:
        chain.append(f"noise=alls={recipe.noise}:allf=t:all_seed={seed % 2**31}")
    if recipe.blur:
        chain.append(f"gblur=sigma={recipe.blur}")
    if recipe.rescale > 1:
        width, height = pristine.width, pristine.height
        small_w = max(16, int(width / recipe.rescale) // 2 * 2)
        small_h = max(16, int(height / recipe.rescale) // 2 * 2)
        chain.append(f"scale={small_w}:{small_h}:flags=area,scale={width}:{height}:flags=bilinear")
    if recipe.drop > 1:
        chain.append(f"fps={pristine.fps}/{recipe.drop},fps={pristine.fps}")
    return ["-vf", ",".join(chain)] if chain else []


def _encoder_options(recipe: Recipe, pristine: Pristine) -> list[str]:
    encoder, container, _ = ENCODERS[recipe.codec]
    options = ["-c:v", encoder, "-pix_fmt", "yuv420p", "-g", str(2 * pristine.fps), "-threads", "1"]
    options += _rate_options(recipe, pristine)
    return options + ["-an", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", container]


def _rate_options(recipe: Recipe, pristine: Pristine) -> list[str]:
    if recipe.codec == "h264":
        options = ["-preset", "veryfast", "-x264-params", "log-level=none"]
    elif recipe.codec == "hevc":
        options = ["-preset", "ultrafast", "-x265-params", "pools=none:frame-threads=1:log-level=none"]
    else:
        options = ["-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0", "-lag-in-frames", "0"]
    if recipe.crf is not None:
        crf = {"h264": recipe.crf, "hevc": recipe.crf, "vp9": min(63, round(recipe.crf * 1.24))}[recipe.codec]
        return options + ["-crf", str(crf)] + (["-b:v", "0"] if recipe.codec == "vp9" else [])
    kbps = max(1, round(recipe.bpp * pristine.width * pristine.height * pristine.fps / 1000))
    return options + ["-b:v", f"{kbps}k", "-maxrate", f"{2 * kbps}k", "-bufsize", f"{2 * kbps}k"]


def write_pristine(frames: np.ndarray, path: Path, fps: int) -> Pristine:
    """The reference: uint8 RGB frames converted once to yuv420p (the format every upload is coded in)."""
    height, width = frames.shape[1:3]
    run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
                "-pix_fmt", "yuv420p", "-f", "rawvideo", str(path)], stdin=frames.tobytes())
    return Pristine(Path(path), width, height, fps)


def ffmpeg_binary() -> str:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("measured quality labels need Debian's ffmpeg (apt-get install ffmpeg)")
    return binary


def run_ffmpeg(arguments: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    command = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *(["-nostdin"] if stdin is None else []),
               *arguments]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.decode(errors='replace')[-800:]}")
    return result
