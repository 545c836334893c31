"""Peak RSS of one worker process per single input: ``stream-tagger tag FILE`` in a fresh process each.

The inputs that cost memory inside ``av.open`` or the decoder: files declaring 1000 streams (MP4 and
Matroska), 4K H.264 and HEVC, a 2-hour upload, a 1.1 GB one, and the bad-input corpus. The bound in
docs/reliability.md is the largest figure here; the baseline is the same process on a 2-second clip.

    python -m bench.single_input_rss [--engines-dir engines]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import machine
from bench.engines import ENGINES_DIR
from stream_tagger.testing import uploads

RESULTS = Path(__file__).resolve().parent / "results"


def inputs(folder: Path) -> dict[str, Path]:
    frame = uploads.encode_clip(folder / "one_frame.mp4", seconds=0.1, size="32x32", fps=10)
    clip = uploads.encode_clip(folder / "ten_seconds.mp4", seconds=10)
    made = {
        "2s_96x64 (baseline)": uploads.encode_clip(folder / "small.mp4", seconds=2, size="96x64", fps=10),
        "streams_1000.mp4": uploads.many_streams(frame, folder / "streams_1000.mp4", 1000),
        "streams_1000.mkv": uploads.many_streams(frame, folder / "streams_1000.mkv", 1000),
        "h264_3840x2160": uploads.encode_clip(folder / "h264_4k.mp4", seconds=2, size="3840x2160", fps=30),
        "two_hours": uploads.loop_clip(clip, folder / "two_hours.mp4", 7200),
        "big_1.1GB": uploads.pad_after_packets(clip, folder / "big.mp4", 1_100_000_000),
    }
    hevc = folder / "hevc_4k.mp4"
    uploads.ffmpeg("-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30:duration=2", "-c:v", "libx265",
                   "-preset", "ultrafast", "-x265-params", "log-level=none", "-tag:v", "hvc1", str(hevc))
    made["hevc_3840x2160"] = hevc
    return made


def peak_rss_mb(file: Path, env: dict[str, str]) -> tuple[float, str]:
    process = subprocess.Popen([sys.executable, "-m", "stream_tagger.cli", "tag", str(file)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    line = json.loads(out.splitlines()[0]) if out.strip() else {}
    return round(usage.ru_maxrss / 1024, 1), line.get("code", "tag" if line else f"exit {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.single_input_rss", description=__doc__)
    parser.add_argument("--engines-dir", type=Path, default=ENGINES_DIR)
    parser.add_argument("--name", default="single-input-rss-cpu-2core")
    args = parser.parse_args(argv)
    env = {**os.environ, "STREAM_TAGGER_ENGINE_DIR": str(args.engines_dir), "STREAM_TAGGER_BACKEND": "onnxruntime"}
    with tempfile.TemporaryDirectory() as folder:
        rows = {}
        for name, file in inputs(Path(folder)).items():
            rss, outcome = peak_rss_mb(file, env)
            rows[name] = {"peak_rss_mb": rss, "outcome": outcome, "bytes": file.stat().st_size}
            print(f"{name:24s} {rss:8.1f} MB  {outcome}", flush=True)
    results = {"command": "python -m bench.single_input_rss " + " ".join(argv or sys.argv[1:]),
               "machine": machine.describe(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
