"""A world clip rendered as an upload: at a real upload size, textured, filmed by a panning camera.

The scene, agent and badge are the clip's own (``video_world.render.layout`` at the upload size, so
its other labels hold); a natural texture (``video_world.texture``) drifts under them the way the
background moves under a panning camera, which gives an encoder's motion search and rate control
the work real footage gives them. Only the early frames matter to the engines, so these clips are
short (``WorldOptions.seconds``, e.g. 1.2 s).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from video_world.render import layout
from video_world.spec import ClipSpec
from video_world.texture import draw_texture

#: (name, width, height, probability): the sizes uploads arrive at, 360p to 1080p.
UPLOAD_SIZES: tuple[tuple[str, int, int, float], ...] = (
    ("360p", 640, 360, 0.30), ("480p", 854, 480, 0.25), ("720p", 1280, 720, 0.30), ("1080p", 1920, 1080, 0.15),
)
MAX_PAN_PX_PER_FRAME = 3.0


def draw_size(rng: np.random.Generator) -> tuple[str, int, int]:
    weights = np.array([size[3] for size in UPLOAD_SIZES])
    name, width, height, _ = UPLOAD_SIZES[int(rng.choice(len(UPLOAD_SIZES), p=weights / weights.sum()))]
    return name, width, height


def at_size(spec: ClipSpec, width: int, height: int) -> ClipSpec:
    return spec.replace(options=dataclasses.replace(spec.options, width=width, height=height))


def render_upload(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB ``[T, H, W, 3]``: the pristine clip at ``spec.options``' size, before any degradation."""
    o = spec.options
    plan = layout(spec)
    speed = rng.uniform(0.0, MAX_PAN_PX_PER_FRAME)
    angle = rng.uniform(0, 2 * np.pi)
    step = np.array([np.sin(angle), np.cos(angle)]) * speed
    margin = int(np.ceil(speed * o.frames)) + 2
    texture = draw_texture(rng, o.height + 2 * margin, o.width + 2 * margin, o.texture)
    start = np.array([margin, margin]) - step * o.frames / 2  # the pan is centred on the texture
    clip = np.empty((o.frames, o.height, o.width, 3), np.uint8)
    for frame in range(o.frames):
        top, left = np.round(start + step * frame).astype(int)
        canvas = plan.scene.background + texture[top:top + o.height, left:left + o.width]
        for sprite in plan.scene.moving:
            sprite.draw(canvas, frame / o.fps)
        plan.agent.draw(canvas, frame)
        if plan.badge is not None:
            plan.badge.draw(canvas, frame)
        clip[frame] = np.clip(canvas, 0, 255).round()
    return clip
