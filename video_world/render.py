"""Render one clip's frames from its spec: scene, agent, timeliness badge, then quality damage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_world.agent import AgentPath, plan_path
from video_world.badges import Badge, place_badge
from video_world.degrade import degrade
from video_world.encode import GRADE_CRF, EncodeSettings, encode_clip
from video_world.scene import Scene, build_scene
from video_world.spec import AGENT_STREAM, BADGE_STREAM, DEGRADE_STREAM, SCENE_STREAM, ClipSpec, clip_rng


@dataclass(frozen=True)
class Layout:
    """Where everything of a clip is: what tests inspect to check labels against pixels."""

    scene: Scene
    agent: AgentPath
    badge: Badge | None


def layout(spec: ClipSpec) -> Layout:
    o = spec.options
    rng = lambda stream: clip_rng(spec.seed, spec.index, stream)
    if o.world == "v2":
        return _layout_v2(spec, rng)
    scene = build_scene(spec.category, spec.true_tags, o.width, o.height, o.scale, rng(SCENE_STREAM))
    agent = plan_path(spec.early_action, o.frames, o.fps, o.width, o.height, o.scale, rng(AGENT_STREAM))
    badge = place_badge(spec.timeliness, o.width, o.height, o.scale, rng(BADGE_STREAM))
    return Layout(scene, agent, badge if spec.visual_evidence else None)


def _layout_v2(spec: ClipSpec, rng) -> Layout:
    from video_world import agent_v2, v2

    o = spec.options
    scene = v2.build_scene(spec.true_tags, o.width, o.height, o.scale, rng(SCENE_STREAM))
    agent = agent_v2.plan_path(spec.early_action, o.frames, o.fps, o.width, o.height, o.scale, rng(AGENT_STREAM))
    kind = v2.badge_kind(spec.timeliness, spec.evidence_mode)
    return Layout(scene, agent, None if kind is None else place_badge(kind, o.width, o.height, o.scale,
                                                                      rng(BADGE_STREAM)))


def render_clip(spec: ClipSpec, frames: int | None = None) -> np.ndarray:
    """uint8 RGB frames ``[T, H, W, 3]`` of the clip (only the first ``frames`` if given)."""
    o = spec.options
    plan = layout(spec)
    count = o.frames if frames is None else min(frames, o.frames)
    clip = np.empty((count, o.height, o.width, 3), dtype=np.float32)
    for frame in range(count):
        canvas = plan.scene.render(frame / o.fps)
        plan.agent.draw(canvas, frame)
        if plan.badge is not None:
            plan.badge.draw(canvas, frame)
        clip[frame] = canvas
    degrade(clip, spec.quality, o.scale, clip_rng(spec.seed, spec.index, DEGRADE_STREAM))
    return np.clip(clip, 0, 255, out=clip).round().astype(np.uint8)


def write_clip(spec: ClipSpec, path: Path) -> None:
    settings = EncodeSettings(spec.options.codec, spec.options.fps, GRADE_CRF[spec.quality])
    encode_clip(render_clip(spec), path, settings)
