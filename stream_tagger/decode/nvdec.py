"""NVDEC decoding of the early frames through PyAV's hwaccel, with a per-video fallback to PyAV.

Why PyAV hwaccel: its PyPI wheels (18.x) already ship an FFmpeg with NVDEC, so the GPU path needs
no extra dependency and keeps the exact frame picking and swscale conversion of the CPU decoder
(the engines were trained on that), which is what makes NVDEC and PyAV frames agree.
Frames are decoded on the GPU and downloaded as NV12 (PyAV's default output); only the picked
frames are converted to RGB and resized, by the same ``to_rgb`` as ``PyAVDecoder``.

Fallback, per video, with the reason in ``DecodedClip.notes["nvdec_fallback"]``:
- the codec has no NVDEC config in this FFmpeg (e.g. AV1 through libdav1d): that video only;
- the CUDA device cannot be opened (no GPU, no ``video`` driver capability): every later video too,
  once a software decode of the same file proved the file itself was fine.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import av
from av.codec.hwaccel import HWAccel

from stream_tagger.decode import DecodedClip, DecodeLimits, Source
from stream_tagger.decode.pyav import PyAVDecoder
from stream_tagger.errors import DecodeFailed
from stream_tagger.sampling import FramePolicy

log = logging.getLogger(__name__)

FALLBACK_NOTE = "nvdec_fallback"


class HardwareUnavailable(Exception):
    """Raised inside this module when NVDEC cannot decode a video; the caller falls back to PyAV."""

    def __init__(self, reason: str, *, device_problem: bool) -> None:
        super().__init__(reason)
        self.device_problem = device_problem


class NvdecDecoder:
    name = "nvdec"

    def __init__(self, limits: DecodeLimits, device: int = 0) -> None:
        self.limits = limits
        self._hardware = _HardwareDecoder(limits, device)
        self._software = PyAVDecoder(limits)
        #: Why NVDEC is off for this decoder (set after the device failed on a readable file).
        self.disabled_reason: str | None = None

    def decode(self, source: Source, policies: Sequence[FramePolicy]) -> DecodedClip:
        if self.disabled_reason is not None:
            return self._fallback(source, policies, self.disabled_reason)
        try:
            return self._hardware.decode(source, policies)
        except HardwareUnavailable as exc:
            clip = self._fallback(source, policies, str(exc))
            if exc.device_problem:
                self.disabled_reason = f"CUDA device unusable: {exc}"
                log.warning("NVDEC disabled, decoding with PyAV from now on: %s", exc)
            return clip

    def close(self) -> None:
        """Nothing is held between videos (each container owns its hardware context)."""

    def _fallback(self, source: Source, policies: Sequence[FramePolicy], reason: str) -> DecodedClip:
        _rewind(source)
        clip = self._software.decode(source, policies)
        return dataclasses.replace(clip, notes={**clip.notes, FALLBACK_NOTE: reason})


class _HardwareDecoder(PyAVDecoder):
    """``PyAVDecoder`` whose containers decode on NVDEC; refuses (never silently) software decoding."""

    name = "nvdec"

    def __init__(self, limits: DecodeLimits, device: int) -> None:
        super().__init__(limits)
        self._device = device

    def decode(self, source: Source, policies: Sequence[FramePolicy]) -> DecodedClip:
        # NVDEC deblocks in hardware, at no cost, whatever a policy allows: ``deblock=False`` is a
        # permission (see SamplingPolicy.deblock), adopted only where the engine holds with the filter too.
        try:
            return super().decode(source, policies)
        except DecodeFailed as exc:  # a hardware decode error: let the CPU decoder have its say
            raise HardwareUnavailable(f"NVDEC decode error: {exc}", device_problem=False) from exc

    def _open(self, source: Source) -> av.container.InputContainer:
        hwaccel = HWAccel(
            "cuda",
            device=str(self._device),
            allow_software_fallback=False,
            # Share CUDA's primary context with pycuda/TensorRT instead of creating one per video.
            options={"primary_ctx": "1"},
        )  # default output: frames downloaded to host memory (NV12), which swscale converts
        try:
            return av.open(source, mode="r", options=self.limits.open_options(), timeout=self.limits.timeout_s,
                           hwaccel=hwaccel)
        except NotImplementedError as exc:  # PyAV: the codec has no CUDA hardware config
            raise HardwareUnavailable(str(exc), device_problem=False) from exc
        except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise HardwareUnavailable(f"opening with NVDEC failed: {exc}", device_problem=True) from exc

    def _decode_open(self, container, policies, started) -> DecodedClip:
        video = container.streams.video
        if video and not video[0].codec_context.is_hwaccel:
            codec = video[0].codec_context.name
            raise HardwareUnavailable(f"codec {codec} is not hardware-decoded here", device_problem=False)
        return super()._decode_open(container, policies, started)


def _rewind(source: Source) -> None:
    """A file-like source was partly read by the NVDEC attempt: start again from its beginning."""
    if isinstance(source, str):
        return
    if not (hasattr(source, "seekable") and source.seekable()):
        raise DecodeFailed("NVDEC failed on a non-seekable stream and PyAV cannot re-read it")
    source.seek(0)
