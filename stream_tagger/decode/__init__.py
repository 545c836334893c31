"""Early-frame decoders behind one small interface; the factory imports only the chosen backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import numpy as np

from stream_tagger.sampling import FramePolicy

Source = str | BinaryIO


@dataclass(frozen=True)
class DecodeLimits:
    """Per-video resource bounds; exceeding one raises TooLarge or DecodeTimeout."""

    max_pixels: int = 3840 * 2160
    timeout_s: float = 10.0
    #: ffmpeg may only use these protocols and demuxers (no playlist tricks that open other files).
    protocol_whitelist: str = "file,pipe"
    format_whitelist: str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,avi,flv,h264,hevc,ivf,mpeg"
    #: Opening a container: at most this many streams (each costs codec state inside av.open), and
    #: ffmpeg's probing bounded in bytes and in stream time (µs).
    max_streams: int = 16
    probesize: int = 5_000_000
    analyzeduration_us: int = 5_000_000

    def open_options(self) -> dict[str, str]:
        """The options every ``av.open`` gets (whitelists and the opening bounds)."""
        return {
            "protocol_whitelist": self.protocol_whitelist,
            "format_whitelist": self.format_whitelist,
            "max_streams": str(self.max_streams),
            "probesize": str(self.probesize),
            "analyzeduration": str(self.analyzeduration_us),
        }


@dataclass(frozen=True)
class DecodedClip:
    """What each policy asked for, as uint8 RGB ``[T, H, W, 3]`` arrays: frames resized by a
    SamplingPolicy, native-resolution mosaics by a FragmentPolicy (``H = W = grid * patch``)."""

    frames: dict[FramePolicy, np.ndarray]
    backend: str
    frames_decoded: int
    seconds_covered: float
    duration: float | None
    source_size: tuple[int, int]
    notes: dict[str, str] = field(default_factory=dict)
    #: Bytes read from the source to decode these frames (set by the tagger; None when unknown).
    bytes_fetched: int | None = None


class Decoder(Protocol):
    name: str
    limits: DecodeLimits

    def decode(self, source: Source, policies: Sequence[FramePolicy]) -> DecodedClip: ...

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
