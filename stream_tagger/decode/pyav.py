"""CPU decoding of the early frames with PyAV: demux, decode until the last target, scale in ffmpeg."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Sequence

import av
import numpy as np

from stream_tagger.decode import DecodedClip, DecodeLimits, Source
from stream_tagger.decode.fragments import cut_fragments
from stream_tagger.errors import DecodeFailed, DecodeTimeout, TooLarge
from stream_tagger.sampling import FragmentPolicy, FramePolicy

_DEFAULT_FRAME_INTERVAL = 1 / 30
#: Packets held while planning ``decode="needed"`` (17 s at 30 fps, far beyond an early window).
_MAX_PLANNED_PACKETS = 512


class PyAVDecoder:
    name = "pyav"

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits

    def decode(self, source: Source, policies: Sequence[FramePolicy]) -> DecodedClip:
        """One pass over the early frames per ``decode`` setting the policies ask for (one, normally)."""
        started = time.monotonic()
        passes = _passes(list(dict.fromkeys(policies))) or [[]]
        clips = []
        for index, group in enumerate(passes):
            if index:
                _rewind(source)
            clips.append(self._decode_pass(source, group, started))
        return clips[0] if len(clips) == 1 else _merged(clips)

    def _decode_pass(self, source: Source, policies: list[FramePolicy], started: float) -> DecodedClip:
        container = self._open(source)
        try:
            if time.monotonic() - started > self.limits.timeout_s:  # the deadline covers opening too
                raise DecodeTimeout(f"opening the video exceeded {self.limits.timeout_s:.1f}s")
            return self._decode_open(container, policies, started)
        except (av.error.FFmpegError, ValueError) as exc:
            raise DecodeFailed(f"decoding failed: {exc}") from exc
        finally:
            container.close()

    def close(self) -> None:
        """Nothing is held between videos."""

    def _open(self, source: Source) -> av.container.InputContainer:
        try:
            return av.open(source, mode="r", options=self.limits.open_options(), timeout=self.limits.timeout_s)
        except FileNotFoundError as exc:
            raise DecodeFailed(f"no such file: {exc.filename}") from exc
        except av.error.ExitError as exc:  # ffmpeg's interrupt callback: PyAV's open/read timeout fired
            raise DecodeTimeout(f"opening the video exceeded {self.limits.timeout_s:.1f}s") from exc
        except av.error.MemoryError as exc:  # ENOMEM while opening: above all, more streams than max_streams
            raise TooLarge(
                f"opening the container needs more than allowed (max_streams={self.limits.max_streams}): {exc}"
            ) from exc
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise DecodeFailed(f"not a readable video container: {exc}") from exc

    def _decode_open(
        self, container: av.container.InputContainer, policies: list[FramePolicy], started: float
    ) -> DecodedClip:
        if not container.streams.video:
            raise DecodeFailed("the container has no video stream")
        stream = container.streams.video[0]
        decode, deblock = _pass_setting(policies)
        if decode == "reference":
            stream.codec_context.skip_frame = "NONREF"
        if not deblock:  # read when the codec opens, on the first packet
            stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}
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
        if decode == "needed":
            frames = _needed_frames(container, stream, picker.target_times(), tolerance)
        else:
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

    def __init__(self, policies: list[FramePolicy], duration: float | None, tolerance: float) -> None:
        self._targets = {p: p.target_times(duration) for p in policies}
        self._kept: dict[FramePolicy, list[np.ndarray]] = {p: [] for p in policies}
        self._tolerance = tolerance

    def target_times(self) -> list[float]:
        return sorted({t for targets in self._targets.values() for t in targets})

    def offer(self, frame: av.VideoFrame, frame_time: float) -> bool:
        """Take ``frame`` for every target it reaches; True once every policy is complete."""
        converted: dict[object, np.ndarray] = {}
        for policy, targets in self._targets.items():
            kept = self._kept[policy]
            while len(kept) < len(targets) and targets[len(kept)] <= frame_time + self._tolerance:
                key = policy if isinstance(policy, FragmentPolicy) else policy.size  # same size, one resize
                if key not in converted:
                    converted[key] = picture(frame, policy)
                kept.append(converted[key])
        return all(len(self._kept[p]) == len(t) for p, t in self._targets.items())

    def result(self) -> dict[FramePolicy, np.ndarray]:
        """Stack the kept frames, repeating the last one when the video ended early."""
        out = {}
        for policy, targets in self._targets.items():
            kept = self._kept[policy]
            kept.extend([kept[-1]] * (len(targets) - len(kept)))
            out[policy] = np.stack(kept)
        return out


def picture(frame: av.VideoFrame, policy: FramePolicy) -> np.ndarray:
    """What ``policy`` keeps of one frame: the frame resized, or its native-resolution fragments."""
    if isinstance(policy, FragmentPolicy):
        return cut_fragments(frame, policy)
    return to_rgb(frame, policy.width, policy.height)


def to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """Scale and convert in ffmpeg's swscale (fast, and identical for training and serving)."""
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()


def _pictures(policy: FramePolicy) -> tuple[str, bool]:
    """Which pictures a policy's frames come from; ``needed`` gives the same ones as ``all``."""
    return ("all" if policy.decode == "needed" else policy.decode), policy.deblock


def _passes(policies: list[FramePolicy]) -> list[list[FramePolicy]]:
    """Policies grouped by the pictures they need: one decoding pass each (one, when the engines agree)."""
    groups: dict[tuple[str, bool], list[FramePolicy]] = {}
    for policy in policies:
        groups.setdefault(_pictures(policy), []).append(policy)
    # deblock=False is a permission, declared only where an engine's figures hold on deblocked
    # pictures too: when another policy needs the filter, its pass serves both (one pass, not two).
    for decode, deblock in list(groups):
        if not deblock and (decode, True) in groups:
            groups[(decode, True)] += groups.pop((decode, False))
    return [groups[key] for key in sorted(groups)]


def _pass_setting(policies: list[FramePolicy]) -> tuple[str, bool]:
    """How one pass decodes: as its policies say, ``needed`` if any asks for it, deblocked if any needs it."""
    if not policies:
        return "all", True
    decode, _ = _pictures(policies[0])
    if decode == "all" and any(p.decode == "needed" for p in policies):
        decode = "needed"
    return decode, any(p.deblock for p in policies)


def _needed_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, targets: list[float], tolerance: float
) -> Iterator[av.VideoFrame]:
    """``container.decode(stream)``, less the non-reference frames that no target keeps.

    Skipping a frame nothing is predicted from changes no other picture, and the packets' presentation
    times say, before anything is decoded, which frame each target keeps (the first at or after it, as
    ``_FramePicker`` picks); so the frames kept are exactly those of decoding every frame. Once the
    last of them is in the decoder, nothing more is decoded just to push the reordered frames out.
    """
    packets = container.demux(stream)
    context = stream.codec_context
    if not context.has_b_frames:  # no reordering: no non-reference B-frame to skip, nothing to plan
        for packet in packets:
            yield from packet.decode()
        return
    buffered, keep, error = _plan(packets, float(stream.time_base), targets, tolerance)
    unsent = set(keep) if keep is not None else None
    for packet in itertools.chain(buffered, () if error else packets):
        context.skip_frame = "DEFAULT" if keep is None or packet.pts in keep else "NONREF"
        yield from packet.decode()
        if unsent is not None:
            unsent.discard(packet.pts)
            if not unsent:  # every kept frame is in the decoder: a flush hands out the ones it still holds
                yield from context.decode(_end_of_stream(stream))
                return
    if error is not None:  # raised where decoding every frame would have met it, after the frames before it
        raise error


def _end_of_stream(stream: av.video.stream.VideoStream) -> av.Packet:
    """An empty packet: decoding it flushes the decoder; with the stream's time base, its frames keep their times."""
    packet = av.Packet()
    packet.time_base = stream.time_base
    return packet


def _plan(
    packets: Iterator[av.Packet], time_base: float, targets: list[float], tolerance: float
) -> tuple[list[av.Packet], set[int] | None, av.error.FFmpegError | None]:
    """Read packets until the frame each target keeps is known; its pts, the first frame's, and the
    packets read. ``None`` for the pts (decode everything) where a packet has no timestamps, or where
    the frames are still unknown after more packets than any early window needs (broken timestamps)."""
    buffered: list[av.Packet] = []
    # The last target's frame so far (its later rounding edge), kept up to date packet by packet.
    first: int | None = None
    last_kept: int | None = None

    def reaches_last(pts: int) -> bool:
        return bool(targets) and (pts - first) * time_base + tolerance >= targets[-1] + 1e-6

    try:
        for packet in packets:
            buffered.append(packet)
            if packet.size == 0:  # the demuxer's end-of-stream packet: every frame is known
                break
            if packet.pts is None or packet.dts is None or len(buffered) > _MAX_PLANNED_PACKETS:
                return buffered, None, None
            if first is None or packet.pts < first:  # a new first frame moves every target
                first = packet.pts
                last_kept = min((p.pts for p in buffered if reaches_last(p.pts)), default=None)
            elif reaches_last(packet.pts) and (last_kept is None or packet.pts < last_kept):
                last_kept = packet.pts
            # Later packets have pts >= dts: past the last target's frame, none can come before it.
            if last_kept is not None and packet.dts > last_kept:
                break
    except av.error.FFmpegError as exc:
        return buffered, None, exc
    timed = [p for p in buffered if p.pts is not None]
    if not timed:
        return buffered, None, None
    return buffered, _kept_pts(timed, time_base, targets, tolerance) | {min(p.pts for p in timed)}, None


def _kept_pts(packets: list[av.Packet], time_base: float, targets: list[float], tolerance: float) -> set[int]:
    """Per target, the pts of the first frame at or after it (two, where float rounding could decide)."""
    times = sorted(p.pts for p in packets)
    first = times[0]
    kept = set()
    for target in targets:
        for edge in (target - 1e-6, target + 1e-6):
            reached = next((pts for pts in times if (pts - first) * time_base + tolerance >= edge), None)
            if reached is not None:
                kept.add(reached)
    return kept


def _merged(clips: list[DecodedClip]) -> DecodedClip:
    """One clip from the passes of one video: every policy's frames, every decoded frame counted."""
    first = clips[0]
    return dataclasses.replace(
        first,
        frames={p: f for clip in clips for p, f in clip.frames.items()},
        frames_decoded=sum(clip.frames_decoded for clip in clips),
        seconds_covered=max(clip.seconds_covered for clip in clips),
        notes={k: v for clip in clips for k, v in clip.notes.items()},
    )


def _rewind(source: Source) -> None:
    """Read a file-like source again from its start for the next pass (a path is simply reopened)."""
    if isinstance(source, str):
        return
    if not (hasattr(source, "seekable") and source.seekable()):
        raise DecodeFailed("the policies need two decoding passes and the stream cannot be re-read")
    source.seek(0)


def _duration_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
