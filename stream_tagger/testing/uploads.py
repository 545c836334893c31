"""Uploads shaped like a platform's, built cheaply with Debian's ffmpeg: long ones (an encoded clip
looped by stream copy, so a 2-hour file has its 216,000 samples in seconds), faststart or moov-at-end,
padded past 1 GB without writing the padding (a sparse hole after the early packets, inside ``mdat``),
and files that declare hundreds of streams.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")


def encode_clip(out: Path, seconds: float = 10, size: str = "64x64", fps: int = 30, faststart: bool = True,
                source: str = "testsrc", bitrate: str | None = None) -> Path:
    """An H.264 MP4 of a lavfi test pattern (ultrafast, a keyframe every 2 s)."""
    rate = ["-b:v", bitrate] if bitrate else []
    ffmpeg("-f", "lavfi", "-i", f"{source}=size={size}:rate={fps}:duration={seconds}", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(2 * fps), *rate,
           "-movflags", "+faststart" if faststart else "-faststart", str(out))
    return out


def loop_clip(clip: Path, out: Path, seconds: float, faststart: bool = True) -> Path:
    """``clip`` repeated (stream copy, no re-encoding) until the file lasts ``seconds``."""
    import av

    with av.open(str(clip)) as container:
        length = float(container.duration or 0) / av.time_base
    loops = max(0, round(seconds / length) - 1)
    ffmpeg("-stream_loop", str(loops), "-i", str(clip), "-c", "copy",
           "-movflags", "+faststart" if faststart else "-faststart", str(out))
    return out


def pad_after_packets(mp4: Path, out: Path, total_bytes: int) -> Path:
    """A valid MP4 of ``total_bytes``: ``mdat`` grows by a sparse hole after its packets (the sample
    tables still point at the same offsets); a ``moov`` after ``mdat`` moves past the hole."""
    data = mp4.read_bytes()
    boxes = list(_top_level_boxes(data))
    _, start, size, header = next(box for box in boxes if box[0] == b"mdat")
    pad = total_bytes - len(data)
    if pad < 0:
        raise ValueError(f"{mp4} is already larger than {total_bytes} bytes")
    head = bytearray(data[: start + size])
    if header == 16:
        struct.pack_into(">Q", head, start + 8, size + pad)
    elif size + pad < 1 << 32:
        struct.pack_into(">I", head, start, size + pad)
    else:
        raise ValueError("a 32-bit mdat cannot grow past 4 GiB here")
    with open(out, "wb") as file:
        file.write(head)
        file.seek(len(head) + pad)
        file.write(data[start + size :])
        file.truncate(total_bytes)
    return out


def _top_level_boxes(data: bytes):
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = len(data) - offset
        yield kind, offset, size, header
        offset += size


def many_streams(clip: Path, out: Path, count: int) -> Path:
    """``clip``'s video stream mapped ``count`` times (one ``trak`` / track each), stream copy."""
    maps = [arg for _ in range(count) for arg in ("-map", "0:v:0")]
    ffmpeg("-i", str(clip), *maps, "-c", "copy", str(out))
    return out
