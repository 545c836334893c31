"""CPU decoding of the early frames with PyAV: demux, decode until the last target, scale in ffmpeg."""

from __future__ import annotations

import time
from typing import Sequence

import av
import numpy as np

from stream_tagger.decode import DecodedClip, DecodeLimits, Source
from stream_tagger.errors import DecodeFailed, DecodeTimeout, TooLarge
from stream_tagger.sampling import SamplingPolicy

_DEFAULT_FRAME_INTERVAL = 1 / 30


class PyAVDecoder:
    name = "pyav"

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits

    def decode(self, source: Source, policies: Sequence[SamplingPolicy]) -> DecodedClip:
        started = time.monotonic()
        policies = list(dict.fromkeys(policies))
        container = self._open(source)
        try:
            return self._decode_open(container, policies, started)
        except (av.error.FFmpegError, ValueError) as exc:
            raise DecodeFailed(f"decoding failed: {exc}") from exc
        finally:
            container.close()

    def close(self) -> None:
        """Nothing is held between videos."""

    def _open(self, source: Source) -> av.container.InputContainer:
        options = {
            "protocol_whitelist": self.limits.protocol_whitelist,
            "format_whitelist": self.limits.format_whitelist,
        }
        try:
            return av.open(source, mode="r", options=options, timeout=self.limits.timeout_s)
        except FileNotFoundError as exc:
            raise DecodeFailed(f"no such file: {exc.filename}") from exc
        except av.error.ExitError as exc:  # ffmpeg's interrupt callback: PyAV's open/read timeout fired
            raise DecodeTimeout(f"opening the video exceeded {self.limits.timeout_s:.1f}s") from exc
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise DecodeFailed(f"not a readable video container: {exc}") from exc

    def _decode_open(
        self, container: av.container.InputContainer, policies: list[SamplingPolicy], started: float
    ) -> DecodedClip:
        if not container.streams.video:
            raise DecodeFailed("the container has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > self.limits.max_pixels:
            raise TooLarge(f"frame size {width}x{height} exceeds max_pixels={self.limits.max_pixels}")
        duration = _duration_seconds(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        tolerance = 0.5 * (float(1 / rate) if rate else _DEFAULT_FRAME_INTERVAL)
        picker = _FramePicker(policies, duration, tolerance)
        decoded = 0
        first_time: float | None = None
        last_time = 0.0
        notes: dict[str, str] = {}
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.ExitError as exc:
                raise DecodeTimeout(f"reading the video exceeded {self.limits.timeout_s:.1f}s") from exc
            except av.error.FFmpegError as exc:
                if decoded == 0:
                    raise
                # A truncated or damaged tail: the early frames already decoded are still valid.
                notes["stopped_early"] = str(exc)[:200]
                break
            if time.monotonic() - started > self.limits.timeout_s:
                raise DecodeTimeout(f"decoding exceeded {self.limits.timeout_s:.1f}s")
            if frame.width * frame.height > self.limits.max_pixels:
                raise TooLarge(f"decoded frame {frame.width}x{frame.height} exceeds max_pixels")
            decoded += 1
            frame_time = frame.time if frame.time is not None else decoded * _DEFAULT_FRAME_INTERVAL
            first_time = frame_time if first_time is None else first_time
            last_time = frame_time - first_time
            if picker.offer(frame, last_time):
                break
        if decoded == 0:
            raise DecodeFailed("the video stream holds no decodable frame")
        return DecodedClip(
            frames=picker.result(),
            backend=self.name,
            frames_decoded=decoded,
            seconds_covered=round(last_time, 4),
            duration=duration,
            source_size=(width, height),
            notes=notes,
        )


class _FramePicker:
    """Keeps, per policy and target time, the first frame at or after the target."""

    def __init__(self, policies: list[SamplingPolicy], duration: float | None, tolerance: float) -> None:
        self._targets = {p: p.target_times(duration) for p in policies}
        self._kept: dict[SamplingPolicy, list[np.ndarray]] = {p: [] for p in policies}
        self._tolerance = tolerance

    def offer(self, frame: av.VideoFrame, frame_time: float) -> bool:
        """Take ``frame`` for every target it reaches; True once every policy is complete."""
        converted: dict[tuple[int, int], np.ndarray] = {}
        for policy, targets in self._targets.items():
            kept = self._kept[policy]
            while len(kept) < len(targets) and targets[len(kept)] <= frame_time + self._tolerance:
                if policy.size not in converted:
                    converted[policy.size] = to_rgb(frame, policy.width, policy.height)
                kept.append(converted[policy.size])
        return all(len(self._kept[p]) == len(t) for p, t in self._targets.items())

    def result(self) -> dict[SamplingPolicy, np.ndarray]:
        """Stack the kept frames, repeating the last one when the video ended early."""
        out = {}
        for policy, targets in self._targets.items():
            kept = self._kept[policy]
            kept.extend([kept[-1]] * (len(targets) - len(kept)))
            out[policy] = np.stack(kept)
        return out


def to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """Scale and convert in ffmpeg's swscale (fast, and identical for training and serving)."""
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()


def _duration_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
