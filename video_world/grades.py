"""Quality grades from full-reference measurements: the boundaries, documented in docs/quality.md.

Each of the two measurements gives a grade by its own boundaries, and the clip gets the worse of the
two. SSIM is the strict one on noise and on lost texture (it punishes grain that PSNR barely sees);
PSNR is the strict one on blocking and banding over smooth areas (which keep their structure, so
SSIM stays high). A clip is only as good as the stricter judge says.
"""

from __future__ import annotations

from video_world.labels import QUALITY_GRADES
from video_world.measure import Measurement

#: Lowest value of each grade but the last (best to worst): at or above it, the clip has that grade.
SSIM_FLOORS: tuple[float, ...] = (0.97, 0.93, 0.85)
PSNR_FLOORS_DB: tuple[float, ...] = (40.0, 35.0, 30.0)


def grade_index(value: float, floors: tuple[float, ...]) -> int:
    """0 (best) … len(floors): the first floor ``value`` reaches."""
    for index, floor in enumerate(floors):
        if value >= floor:
            return index
    return len(floors)


def grade_of(measurement: Measurement) -> str:
    """The clip's grade: the worse of the SSIM grade and the PSNR grade."""
    worst = max(grade_index(measurement.ssim, SSIM_FLOORS), grade_index(measurement.psnr_db, PSNR_FLOORS_DB))
    return QUALITY_GRADES[worst]
