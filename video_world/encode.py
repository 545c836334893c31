"""Encode rendered frames with PyAV, byte-for-byte reproducibly (one encoder thread, no timestamps).

Quality grades map to encoder settings here: ``poor`` clips are starved of bits so that real codec
blockiness (not a painted imitation only) is part of what the quality head learns.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: ``--codec`` choice -> (PyAV encoder, container format, file extension)
CODECS: dict[str, tuple[str, str, str]] = {
    "h264": ("libx264", "mp4", "mp4"),
    "hevc": ("libx265", "mp4", "mp4"),
    "vp9": ("libvpx-vp9", "webm", "webm"),
    "mpeg4": ("mpeg4", "mp4", "mp4"),
}

#: Constant-quality level per grade, on x264's CRF scale (other codecs are mapped from it).
GRADE_CRF: dict[str, int] = {"excellent": 18, "good": 20, "fair": 20, "poor": 32}

# The muxer must not write the wall clock or the library version into the file.
_BITEXACT = {"fflags": "+bitexact"}


@dataclass(frozen=True)
class EncodeSettings:
    codec: str
    fps: int
    crf: int


def file_extension(codec: str) -> str:
    return CODECS[codec][2]


def encode_clip(frames: np.ndarray, path: Path, settings: EncodeSettings) -> None:
    """Write ``frames`` (uint8 ``[T, H, W, 3]`` RGB) to ``path``."""
    encoder, container_format, _ = CODECS[settings.codec]
    with av.open(str(path), mode="w", format=container_format, options=_BITEXACT) as container:
        stream = container.add_stream(encoder, rate=Fraction(settings.fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1  # several encoder threads may pick different decisions run to run
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        _configure(stream, settings)
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _configure(stream: av.video.stream.VideoStream, settings: EncodeSettings) -> None:
    crf = settings.crf
    stream.codec_context.gop_size = 2 * settings.fps
    if settings.codec == "h264":
        stream.options = {"preset": "ultrafast", "crf": str(crf), "x264-params": "threads=1:log-level=none"}
    elif settings.codec == "hevc":
        stream.options = {
            "preset": "ultrafast",
            "crf": str(crf + 2),
            "x265-params": "pools=none:frame-threads=1:log-level=none",
        }
    elif settings.codec == "vp9":
        # VP9's CQ scale is 0..63: x264's CRF 18..36 maps roughly onto 26..52.
        stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": str(min(63, int(crf * 1.45))),
                          "b": "0", "row-mt": "0", "lag-in-frames": "0"}
    else:  # mpeg4 has no CRF: pinning the quantiser plays the same role
        quantiser = max(2, min(31, round((crf - 12) * 0.75)))
        stream.codec_context.qmin = stream.codec_context.qmax = quantiser
        stream.codec_context.bit_rate = 10_000_000
