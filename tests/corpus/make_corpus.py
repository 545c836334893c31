"""Build the bad-input corpus: real files made with Debian's ffmpeg, crafted bytes, and hostile events.

    python3 tests/corpus/make_corpus.py OUT_DIR      # prints one line per case

Every case names the outcome the worker must produce: ``"tag"`` (a valid tag record) or the DLQ codes
it may answer with. Files stay tiny (≤ 96x64, ≤ 2 s except the deliberately long one) so the whole
corpus builds in seconds on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from h264_sps import declare_resolution

TAG = "tag"
SOURCE = "testsrc=size=96x64:rate=10:duration=2"
VFR_TIMESTAMPS = r"settb=1/1000,setpts='if(lt(N\,10)\,N*0.05\,0.5+(N-10)*0.2)/TB'"
#: tkhd display matrix for a 90° rotation (16.16 fixed point, last column 2.30), as phones write it.
ROTATE_90_MATRIX = struct.pack(">9I", 0, 0x00010000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)


@dataclass(frozen=True)
class MediaCase:
    """A file handed to the decoder; ``expect`` is ``("tag",)`` or the DLQ codes that are right."""

    name: str
    file: str
    expect: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class EventCase:
    """A raw Kafka message value for the input topic; ``{media}`` in it is the corpus folder."""

    name: str
    payload: bytes
    expect: tuple[str, ...]
    why: str


def ffmpeg(*args: str) -> None:
    """Run Debian's ffmpeg quietly; a failure shows its stderr."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")


def h264(out: Path, *extra: str, source: str = SOURCE, movflags: str = "+faststart") -> None:
    ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *extra, "-movflags", movflags, str(out))


# Files ffmpeg encodes: name -> (recipe, expected outcome, why).
def _encode_jobs(out: Path) -> dict[str, tuple]:
    return {
        "good.mp4": (lambda p: h264(p), (TAG,), "baseline: a clean H.264 MP4"),
        "moov_at_end.mp4": (lambda p: h264(p, movflags="-faststart"), (TAG,), "index written last"),
        "vfr.mp4": (lambda p: h264(p, "-vf", VFR_TIMESTAMPS, "-fps_mode", "vfr"), (TAG,),
                    "frames 0.1 s apart, then 0.2 s apart"),
        "hevc_10bit.mp4": (lambda p: ffmpeg("-f", "lavfi", "-i", SOURCE, "-c:v", "libx265", "-preset",
                                            "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
                                            "log-level=none", "-tag:v", "hvc1", str(p)), (TAG,),
                           "HEVC Main10, 10-bit 4:2:0"),
        "vp9.webm": (lambda p: ffmpeg("-f", "lavfi", "-i", SOURCE, "-c:v", "libvpx-vp9", "-deadline",
                                      "realtime", "-cpu-used", "8", "-b:v", "100k", str(p)), (TAG,), "VP9 in WebM"),
        "av1.mp4": (lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=1", "-c:v",
                                     "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-b:v", "100k",
                                     str(p)), (TAG,), "AV1 (libaom encoder, dav1d/libaom decoder)"),
        "mpegts.ts": (lambda p: ffmpeg("-f", "lavfi", "-i", SOURCE, "-c:v", "libx264", "-preset", "ultrafast",
                                       "-pix_fmt", "yuv420p", "-f", "mpegts", str(p)), (TAG,), "H.264 in MPEG-TS"),
        "one_frame.mp4": (lambda p: h264(p, "-frames:v", "1"), (TAG,), "a single frame"),
        "two_hours.mp4": (lambda p: h264(p, "-g", "600", source="testsrc=size=32x32:rate=1:duration=7200"),
                          (TAG,), "2 h long, 32x32 at 1 fps: only the early frames may be read"),
        "audio_only.m4a": (lambda p: ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(p)),
                           ("decode_failed",), "no video stream"),
        "raw.h264": (lambda p: ffmpeg("-f", "lavfi", "-i", SOURCE, "-c:v", "libx264", "-preset", "ultrafast",
                                      "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-f", "h264", str(p)), (TAG,),
                     "raw Annex-B H.264 (source of the huge-resolution case)"),
    }


def _crafted(out: Path) -> list[MediaCase]:
    """Files made by cutting, patching or inventing bytes, from good.mp4, moov_at_end.mp4 and raw.h264."""
    good = (out / "good.mp4").read_bytes()
    moov_last = (out / "moov_at_end.mp4").read_bytes()
    (out / "empty.mp4").write_bytes(b"")
    (out / "text.mp4").write_text("this is not a video\n" * 50)
    (out / "truncated.mp4").write_bytes(moov_last[: len(moov_last) // 2])
    (out / "truncated_faststart.mp4").write_bytes(good[: len(good) // 2])
    (out / "corrupted.mp4").write_bytes(_garble_mdat(good))
    (out / "rotated.mp4").write_bytes(_rotate_90(good))
    raw = (out / "raw.h264").read_bytes()
    (out / "huge_16384.h264").write_bytes(declare_resolution(raw, 16384, 16384))
    (out / "huge_8192.h264").write_bytes(declare_resolution(raw, 8192, 8192))
    target = (out / "good.mp4").resolve()
    (out / "playlist.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{target}\n#EXTINF:2.0,\n/etc/passwd\n#EXT-X-ENDLIST\n")
    (out / "concat.ffconcat").write_text(f"ffconcat version 1.0\nfile '{target}'\nfile '/etc/passwd'\n")
    return [
        MediaCase("empty.mp4", "empty.mp4", ("decode_failed",), "zero bytes"),
        MediaCase("text.mp4", "text.mp4", ("decode_failed",), "a text file named .mp4"),
        MediaCase("truncated.mp4", "truncated.mp4", ("decode_failed",), "first half of a file whose index is at the end"),
        MediaCase("truncated_faststart.mp4", "truncated_faststart.mp4", (TAG, "decode_failed"),
                  "first half of a faststart file: early frames intact, a later sampled packet cut"),
        MediaCase("corrupted.mp4", "corrupted.mp4", (TAG, "decode_failed"),
                  "every 7th byte of the frame data overwritten (ffmpeg conceals errors or gives up)"),
        MediaCase("rotated.mp4", "rotated.mp4", (TAG,), "tkhd display matrix says rotate 90°"),
        MediaCase("huge_16384.h264", "huge_16384.h264", ("too_large", "decode_failed"),
                  "SPS rewritten to declare 16384x16384 (ffmpeg itself refuses this size)"),
        MediaCase("huge_8192.h264", "huge_8192.h264", ("too_large",),
                  "SPS rewritten to declare 8192x8192 (67 Mpx, above max_pixels)"),
        MediaCase("playlist.m3u8", "playlist.m3u8", ("decode_failed", "uri_forbidden"),
                  "HLS playlist pointing at a local video and /etc/passwd"),
        MediaCase("concat.ffconcat", "concat.ffconcat", ("decode_failed", "uri_forbidden"),
                  "ffconcat pointing at a local video and /etc/passwd"),
    ]


def _rotate_90(mp4: bytes) -> bytes:
    """Write a 90° display matrix into the (version 0) ``tkhd`` box of a one-track MP4."""
    matrix_at = mp4.index(b"tkhd") + 4 + 4 + 20 + 16  # type, version/flags, times/ids, layer/volume
    return mp4[:matrix_at] + ROTATE_90_MATRIX + mp4[matrix_at + len(ROTATE_90_MATRIX):]


def _garble_mdat(mp4: bytes) -> bytes:
    """Overwrite every 7th byte after the start of the ``mdat`` box, keeping the container valid."""
    start = mp4.index(b"mdat") + 4 + 64  # keep the first slice headers so the stream still opens
    body = bytearray(mp4)
    for index in range(start, len(body), 7):
        body[index] ^= 0xA5
    return bytes(body)


def event_cases() -> list[EventCase]:
    """Messages for the input topic that must never reach the decoder as a file outside the root."""

    def event(video_id: str, uri: str, **extra: object) -> bytes:
        return json.dumps({"video_id": video_id, "uri": uri, "title": "t", **extra}).encode()

    return [
        EventCase("file_etc_passwd", event("bad-passwd", "file:///etc/passwd"), ("uri_forbidden",), "outside the allowed root"),
        EventCase("path_traversal", event("bad-traversal", "file://{media}/../../../../etc/passwd"), ("uri_forbidden",),
                  "`..` climbing out of the allowed root"),
        EventCase("http_host_not_allowed", event("bad-host", "http://evil.example.com/v.mp4"), ("uri_forbidden",),
                  "http to a host not in the allow-list"),
        EventCase("invalid_json", b'{"video_id": "x", "uri": ', ("invalid_json",), "truncated JSON"),
        EventCase("not_utf8", b"\xff\xfe\x00garbage", ("invalid_json",), "bytes that are not UTF-8"),
        EventCase("missing_uri", json.dumps({"video_id": "no-uri"}).encode(), ("invalid_event",),
                  "valid JSON without `uri`"),
        EventCase("missing_video_id", json.dumps({"uri": "file://{media}/good.mp4"}).encode(), ("invalid_event",),
                  "valid JSON without `video_id`"),
        EventCase("ten_megabytes", event("bad-huge", "file://{media}/good.mp4", description="x" * 10_000_000),
                  ("too_large",), "a 10 MB message"),
    ]


def build_corpus(out: Path) -> list[MediaCase]:
    """Write every media file into ``out`` (created if needed) and return the media cases."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = _encode_jobs(out)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(recipe, out / name) for name, (recipe, _, _) in jobs.items()]:
            future.result()
    encoded = [MediaCase(name, name, expect, why) for name, (_, expect, why) in jobs.items()]
    return encoded + _crafted(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or shutil.which("ffmpeg") is None:
        print("usage: make_corpus.py OUT_DIR   (needs Debian's ffmpeg on PATH)", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for case in build_corpus(out):
        print(f"{case.name:28} {'|'.join(case.expect):28} {case.why}")
    for event in event_cases():
        print(f"{event.name:28} {'|'.join(event.expect):28} {event.why} ({len(event.payload)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
