"""``make-dataset --quality-labels measured``: a clip's quality grade measured, not painted.

Each clip is rendered as an upload (``video_world.upload``: 360p to 1080p, textured, panning), kept
as a lossless pristine reference, degraded by a drawn :class:`~video_world.ladder.Recipe` (real
encoders along their rate ladder, capture and scaling filters, double compression), and graded by
measuring the degraded file against its own pristine render (``video_world.measure``,
``video_world.grades``). The grade the label stream drew for the clip only sets how hard the recipe
tends to hit (so the grades come out roughly balanced); the label is what was measured.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from video_world.grades import grade_of
from video_world.labels import QUALITY_GRADES
from video_world.ladder import apply_recipe, draw_recipe, write_pristine
from video_world.measure import measure
from video_world.spec import ClipSpec, clip_rng, manifest_row
from video_world.upload import at_size, draw_size, render_upload

#: Random streams of this module (far from video_world.spec's, which count up from 0).
UPLOAD_STREAM, RECIPE_STREAM = 101, 102


def write_measured_clip(spec: ClipSpec, out: Path, clips_dir: str) -> dict:
    """Render, degrade, measure and write one clip; returns its manifest row."""
    upload_rng = clip_rng(spec.seed, spec.index, UPLOAD_STREAM)
    size_name, width, height = draw_size(upload_rng)
    upload = at_size(spec, width, height)
    recipe = draw_recipe(QUALITY_GRADES.index(spec.quality), clip_rng(spec.seed, spec.index, RECIPE_STREAM),
                         spec.options.texture)
    relative = f"{clips_dir}/{spec.clip_id}.{recipe.extension}"
    frames = render_upload(upload, upload_rng)
    with tempfile.TemporaryDirectory() as scratch:
        pristine = write_pristine(frames, Path(scratch) / "pristine.yuv", upload.options.fps)
        apply_recipe(recipe, pristine, out / relative, seed=spec.seed * 1_000_003 + spec.index)
        measured = measure(out / relative, pristine)
    grade = grade_of(measured)
    row = manifest_row(upload.replace(quality=grade), relative)
    row["codec"] = recipe.codec
    row["quality_measure"] = {**measured.as_dict(), "upload": size_name, "recipe": recipe.describe(),
                              "drawn_severity": spec.quality}
    return row
