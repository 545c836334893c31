"""What one clip is: its labels and options, drawn from a per-clip random stream.

Every random choice of a clip comes from ``clip_rng(seed, index, stream)``: the labels, the scene,
the agent, the badge and the degradation each have their own stream, so changing one label (say
the quality, for a clean twin in a test) leaves every other pixel decision of the clip unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from video_world.labels import (
    CATEGORIES,
    EARLY_ACTIONS,
    QUALITY_GRADES,
    TAG_CATEGORY,
    TAGS,
    TIMELINESS_CLASSES,
    TIMELINESS_TTL_HOURS,
)
from video_world.titles import make_title

# Independent random streams of one clip.
LABEL_STREAM, NOISE_STREAM, SCENE_STREAM, AGENT_STREAM, BADGE_STREAM, DEGRADE_STREAM, TITLE_STREAM = range(7)


@dataclass(frozen=True)
class WorldOptions:
    """Everything but the seed and the clip count that shapes a dataset."""

    width: int = 160
    height: int = 160
    seconds: float = 4.0
    fps: int = 25
    codec: str = "h264"
    tag_noise: float = 0.0
    #: Probability that the title / the picture carries the timeliness evidence. With both at 0.75,
    #: 50 % of clips show it in both, 25 % in the title only, 25 % in the picture only.
    title_cue_rate: float = 0.75
    visual_cue_rate: float = 0.75
    #: ``painted``: the four grades are pixel operations on renders of ``width`` x ``height``
    #: (video_world.degrade). ``measured``: each clip is rendered at an upload size (360p-1080p; the
    #: width and height options are then unused), degraded through real encoders and graded by
    #: SSIM/PSNR against its own pristine render (video_world.measured, docs/quality.md).
    quality_labels: str = "painted"
    #: Measured quality labels: the texture under upload renders (video_world.texture.TEXTURES).
    texture: str = "wide"
    #: ``v1``: the world as it was (unchanged bytes). ``v2``: categories decided by co-occurring tags,
    #: long-tailed tags with realistic noise, timeliness needing both modalities, early-action cues
    #: spread over a long window (video_world.v2, video_world.agent_v2).
    world: str = "v1"
    #: World v2: probability that a title's timeliness cue is a wrong one (the noisy modality).
    title_noise: float = 0.08

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def scale(self) -> float:
        """Sizes of the world are designed at 160 px; smaller frames shrink everything."""
        return min(self.width, self.height) / 160.0


@dataclass(frozen=True)
class ClipSpec:
    seed: int
    index: int
    category: str
    true_tags: tuple[str, ...]
    tags: tuple[str, ...]
    quality: str
    timeliness: str
    title_evidence: bool
    visual_evidence: bool
    early_action: str
    title: str
    options: WorldOptions
    #: World v2: joint | title | visual | both (video_world.v2), and whether the title's cue is wrong.
    evidence_mode: str | None = None
    title_noisy: bool = False

    @property
    def clip_id(self) -> str:
        return f"s{self.seed}-{self.index:06d}"

    def replace(self, **changes: object) -> ClipSpec:
        return dataclasses.replace(self, **changes)


def clip_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def sample_clip(seed: int, index: int, options: WorldOptions) -> ClipSpec:
    if options.world == "v2":
        return _sample_clip_v2(seed, index, options)
    rng = clip_rng(seed, index, LABEL_STREAM)
    category = str(rng.choice(CATEGORIES))
    own_tags = [tag for tag in TAGS if TAG_CATEGORY[tag] == category]
    true_tags = tuple(sorted(rng.choice(own_tags, size=int(rng.integers(2, 4)), replace=False).tolist()))
    timeliness = str(rng.choice(TIMELINESS_CLASSES))
    title_evidence, visual_evidence = _evidence(rng, options.title_cue_rate, options.visual_cue_rate)
    return ClipSpec(
        seed=seed,
        index=index,
        category=category,
        true_tags=true_tags,
        tags=noisy_tags(true_tags, options.tag_noise, clip_rng(seed, index, NOISE_STREAM)),
        quality=str(rng.choice(QUALITY_GRADES)),
        timeliness=timeliness,
        title_evidence=title_evidence,
        visual_evidence=visual_evidence,
        early_action=str(rng.choice(EARLY_ACTIONS)),
        title=make_title(category, timeliness if title_evidence else None, clip_rng(seed, index, TITLE_STREAM)),
        options=options,
    )


def _sample_clip_v2(seed: int, index: int, options: WorldOptions) -> ClipSpec:
    from video_world import v2

    labels = v2.draw_labels(clip_rng(seed, index, LABEL_STREAM), options.title_noise)
    mode = labels["evidence_mode"]
    return ClipSpec(
        seed=seed, index=index, category=labels["category"], true_tags=labels["true_tags"],
        tags=v2.noisy_tags(labels["true_tags"], options.tag_noise, clip_rng(seed, index, NOISE_STREAM)),
        quality=labels["quality"], timeliness=labels["timeliness"], title_evidence=mode != "visual",
        visual_evidence=mode != "title", early_action=labels["early_action"],
        title=v2.make_title(labels["category"], labels["timeliness"], mode, labels["title_noisy"],
                            clip_rng(seed, index, TITLE_STREAM)),
        options=options, evidence_mode=mode, title_noisy=labels["title_noisy"],
    )


def _evidence(rng: np.random.Generator, title_rate: float, visual_rate: float) -> tuple[bool, bool]:
    """Couple the two modalities so that 'neither' is as rare as the rates allow."""
    both = max(0.0, title_rate + visual_rate - 1.0)
    title_only, visual_only = title_rate - both, visual_rate - both
    draw = rng.random()
    if draw < both:
        return True, True
    if draw < both + title_only:
        return True, False
    if draw < both + title_only + visual_only:
        return False, True
    return False, False


def noisy_tags(true_tags: tuple[str, ...], noise: float, rng: np.random.Generator) -> tuple[str, ...]:
    """Drop each true tag with probability ``noise``; twice, add a wrong tag with probability ``noise``."""
    kept = [tag for tag in true_tags if rng.random() >= noise]
    wrong_pool = [tag for tag in TAGS if tag not in true_tags]
    for _ in range(2):
        if rng.random() < noise:
            kept.append(str(rng.choice(wrong_pool)))
    return tuple(sorted(set(kept)))


def manifest_row(spec: ClipSpec, file: str) -> dict:
    """The clip's line in ``manifest.jsonl`` (docs/datasets.md): the format's label fields, then the
    world's own extras (evidence, render options), which trainers ignore."""
    options = spec.options
    return {
        "clip_id": spec.clip_id,
        "file": file,
        "category": spec.category,
        "tags": list(spec.tags),
        "clean_tags": list(spec.true_tags),
        "quality": spec.quality,
        "timeliness": spec.timeliness,
        "ttl_hours": TIMELINESS_TTL_HOURS[spec.timeliness],
        "early_action": spec.early_action,
        "title": spec.title,
        "evidence": {"title": spec.title_evidence, "visual": spec.visual_evidence,
                     **({"mode": spec.evidence_mode, "title_noisy": spec.title_noisy} if spec.evidence_mode else {})},
        "codec": options.codec,
        "fps": options.fps,
        "frames": options.frames,
        "width": options.width,
        "height": options.height,
        "seconds": options.seconds,
        "seed": spec.seed,
        **({"world": options.world} if options.world != "v1" else {}),
    }
