"""Full-reference quality of a degraded clip against its own pristine render (ffmpeg's ssim and psnr).

The two filters run in one ffmpeg pass over both files and write per-frame statistics; a clip's
figures are the means over its frames (SSIM over all planes, PSNR from the mean of each frame's
average PSNR, capped at 100 dB for identical frames).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from video_world.ladder import Pristine, run_ffmpeg

_SSIM = re.compile(r"All:([0-9.]+)")
_PSNR = re.compile(r"psnr_avg:([0-9.]+|inf)")
PSNR_CAP_DB = 100.0


@dataclass(frozen=True)
class Measurement:
    ssim: float  # mean over frames of SSIM (all planes), 0..1
    ssim_min: float  # worst frame
    psnr_db: float  # mean over frames of the average PSNR
    frames: int

    def as_dict(self) -> dict:
        return {"ssim": round(self.ssim, 5), "ssim_min": round(self.ssim_min, 5), "psnr_db": round(self.psnr_db, 3),
                "frames": self.frames}


def measure(degraded: Path, pristine: Pristine) -> Measurement:
    """SSIM and PSNR of the file ``degraded`` against ``pristine`` (same size; frames paired in order)."""
    with tempfile.TemporaryDirectory() as folder:
        ssim_log, psnr_log = Path(folder) / "ssim.log", Path(folder) / "psnr.log"
        # ssim passes its first input through, so psnr reads the degraded frames after it
        graph = ("[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,split[r0][r1];"
                 f"[d][r0]ssim=stats_file={ssim_log}[s];[s][r1]psnr=stats_file={psnr_log}")
        run_ffmpeg(["-i", str(degraded), *pristine.input_args(), "-filter_complex", graph, "-f", "null", "-"])
        ssim = [float(v) for v in _SSIM.findall(ssim_log.read_text())]
        psnr = [PSNR_CAP_DB if v == "inf" else min(float(v), PSNR_CAP_DB) for v in _PSNR.findall(psnr_log.read_text())]
    if not ssim or len(ssim) != len(psnr):
        raise RuntimeError(f"ffmpeg measured {len(ssim)} SSIM and {len(psnr)} PSNR frames for {degraded}")
    return Measurement(sum(ssim) / len(ssim), min(ssim), sum(psnr) / len(psnr), len(ssim))
