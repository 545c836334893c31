"""The one video set every benchmark uses, made once into a git-ignored cache.

ffmpeg-made H.264 videos at 720p and 1080p (10–30 s, ``testsrc2`` with temporal noise so the bitrate
looks like a phone upload rather than a flat test card) plus clips of the synthetic world the engines
are trained on, rendered at 720p for 10 s so every video of the set is upload-sized (the soak uses the
world's small training-sized clips instead). Files are only (re)made when missing, so the timing runs
never pay for them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Video:
    name: str
    path: Path
    source: str  # "ffmpeg" or "synthetic"
    width: int
    height: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self) | {"path": str(self.path), "bytes": self.path.stat().st_size}


# (name, width, height, seconds): the ffmpeg-made part of the set.
FFMPEG_SPECS = [
    ("h264-720p-10s", 1280, 720, 10),
    ("h264-720p-30s", 1280, 720, 30),
    ("h264-1080p-10s", 1920, 1080, 10),
    ("h264-1080p-20s", 1920, 1080, 20),
]
SYNTHETIC_CLIPS = 4
#: The synthetic part of the benchmark set: upload-sized renders of the world (same scene layout, scaled).
SYNTHETIC_SIZE = {"width": 1280, "height": 720, "seconds": 10.0}


def video_set(cache_dir: Path = CACHE_DIR, quick: bool = False) -> list[Video]:
    """The cached video set, made on first use; ``quick`` keeps one video per source and size."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    specs = FFMPEG_SPECS[::2] if quick else FFMPEG_SPECS
    videos = [_ffmpeg_video(cache_dir, *spec) for spec in specs]
    videos += synthetic_videos(cache_dir / "synthetic-720p", 2 if quick else SYNTHETIC_CLIPS, **SYNTHETIC_SIZE)
    return videos


def _ffmpeg_video(cache_dir: Path, name: str, width: int, height: int, seconds: float) -> Video:
    path = cache_dir / f"{name}.mp4"
    if not path.exists():
        _encode_testsrc(path, width, height, seconds)
    return Video(name, path, "ffmpeg", width, height, float(seconds))


def _encode_testsrc(path: Path, width: int, height: int, seconds: float, fps: int = 30) -> None:
    """H.264 High, GOP 2 s, yuv420p, moov atom first: what a phone or an upload service produces."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the benchmark video set needs Debian's ffmpeg (apt-get install ffmpeg)")
    partial = path.with_suffix(".partial.mp4")
    source = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-vf",
            "noise=alls=8:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-g",
            str(2 * fps),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(partial),
        ],
        check=True,
    )
    partial.rename(path)  # atomic: an interrupted run never leaves a truncated video in the set


def synthetic_videos(out_dir: Path, count: int, **options: object) -> list[Video]:
    """Clips of the trainer's synthetic world (or testsrc2 stand-ins until the generator exists);
    ``options`` are world options (width, height, seconds), the world's defaults otherwise."""
    manifest = out_dir / "manifest.jsonl"
    if not manifest.exists() or (_stand_ins(manifest) and _generator() is not None):
        _make_synthetic(out_dir, max(count, SYNTHETIC_CLIPS), options)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()][:count]
    return [
        Video(
            f"synthetic-{row['clip_id']}",
            out_dir / row["file"],
            "synthetic",
            int(row["width"]),
            int(row["height"]),
            float(row["seconds"]),
        )
        for row in rows
    ]


def _make_synthetic(out_dir: Path, count: int, options: dict) -> None:
    generate = _generator()
    if generate is None:
        _make_testsrc_stand_ins(out_dir, count)
    else:
        generate(out_dir, clips=count, seed=8, workers=2, **options)


def _generator():
    try:
        from video_world.dataset import generate_dataset
    except ImportError:
        return None
    return generate_dataset


def _stand_ins(manifest: Path) -> bool:
    return '"stand_in": true' in manifest.read_text()


def _make_testsrc_stand_ins(out_dir: Path, count: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        name = f"testsrc-{index}"
        _encode_testsrc(out_dir / f"{name}.mp4", 320, 240, 10 + 5 * index)
        rows.append(
            {
                "clip_id": name,
                "file": f"{name}.mp4",
                "width": 320,
                "height": 240,
                "seconds": 10 + 5 * index,
                "stand_in": True,
            }
        )
    (out_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
