"""Early-frame decoders behind one small interface; the factory imports only the chosen backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, Sequence

import numpy as np

from stream_tagger.sampling import SamplingPolicy

Source = str | BinaryIO


@dataclass(frozen=True)
class DecodeLimits:
    """Per-video resource bounds; exceeding one raises TooLarge or DecodeTimeout."""

    max_pixels: int = 3840 * 2160
    timeout_s: float = 10.0
    #: ffmpeg may only use these protocols and demuxers (no playlist tricks that open other files).
    protocol_whitelist: str = "file,pipe"
    format_whitelist: str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,avi,flv,h264,hevc,ivf,mpeg"


@dataclass(frozen=True)
class DecodedClip:
    """The frames each sampling policy asked for, as uint8 RGB ``[T, H, W, 3]`` arrays."""

    frames: dict[SamplingPolicy, np.ndarray]
    backend: str
    frames_decoded: int
    seconds_covered: float
    duration: float | None
    source_size: tuple[int, int]
    notes: dict[str, str] = field(default_factory=dict)


class Decoder(Protocol):
    name: str

    def decode(self, source: Source, policies: Sequence[SamplingPolicy]) -> DecodedClip: ...

    def close(self) -> None: ...


def make_decoder(backend: str, limits: DecodeLimits | None = None) -> Decoder:
    """Build the decoder named ``backend`` (``pyav`` or ``nvdec``)."""
    limits = limits or DecodeLimits()
    if backend == "pyav":
        from stream_tagger.decode.pyav import PyAVDecoder

        return PyAVDecoder(limits)
    if backend == "nvdec":
        from stream_tagger.decode.nvdec import NvdecDecoder

        return NvdecDecoder(limits)
    raise ValueError(f"unknown decoder backend {backend!r} (expected pyav or nvdec)")
