"""World v2 (``make-dataset --world v2``): a world hard enough to show what each mechanism is worth.

World v1 stays as it was (same seed and options → the same bytes); v2 changes what the labels mean:

- **Category by co-occurrence.** Every tag belongs to two categories (``TAG_CATEGORIES``), so no tag
  and no background (drawn independently of the category) names the category alone; a clip's category
  is the one category all of its tags share. The categories form two groups of three: each pair across
  the groups shares two tags, each pair inside a group one, so any three tags of a category decide it
  and two tags do unless they are the two of one pair (such draws are redrawn).
- **Long-tailed tag frequencies.** Within its category a clip draws 2-4 tags with Zipf weights
  (exponent ``TAG_ZIPF``) over a fixed random ranking of the tags.
- **Realistic tag noise** (training rows only; ``clean_tags`` keep the truth), rates from ``--tag-noise``
  t: small objects are systematically left out (probability 2.5 t), a tag is confused with its
  look-alike (``LOOKALIKE``, probability 4/3 t), any other tag is left out with probability t / 3,
  and a random wrong tag is added with probability t / 3.
- **Timeliness that needs both modalities.** On half of the clips (``joint``) the title carries a word
  that narrows the class to a pair (``TITLE_GROUPS``) and the picture a badge that narrows it to another
  pair (``VISUAL_GROUPS``): only together do they decide. Otherwise the title alone (20 %), the badge
  alone (20 %) or both (10 %) name the class. The title is the noisy modality: with probability
  ``title_noise`` its cue word is a wrong one.
- **Early action remembered over a long window** (``video_world.agent_v2``).
"""

from __future__ import annotations

import numpy as np

from video_world.labels import CATEGORIES, EARLY_ACTIONS, QUALITY_GRADES, TAGS, TIMELINESS_CLASSES
from video_world.scene import _BACKGROUNDS, INTERMITTENT_RATE, Scene
from video_world.tags import TAG_SPRITES
from video_world.titles import CUE_WORDS, FILLERS, SUBJECTS

GROUP_ONE, GROUP_TWO = ("news", "sports", "gaming"), ("nature", "cooking", "music")

#: Each tag -> the two categories it belongs to.
TAG_CATEGORIES: dict[str, tuple[str, str]] = {
    # inside a group: one tag per pair
    "scoreboard": ("news", "sports"), "map_inset": ("news", "gaming"), "hud_bar": ("sports", "gaming"),
    "steam": ("nature", "cooking"), "birds": ("nature", "music"), "equalizer": ("cooking", "music"),
    # across the groups: two tags per pair
    "ticker": ("news", "nature"), "sun": ("news", "nature"),
    "live_desk": ("news", "cooking"), "pot": ("news", "cooking"),
    "red_circle": ("news", "music"), "microphone": ("news", "music"),
    "field_lines": ("sports", "nature"), "trees": ("sports", "nature"),
    "ball": ("sports", "cooking"), "cutting_board": ("sports", "cooking"),
    "goal_net": ("sports", "music"), "stage_lights": ("sports", "music"),
    "crosshair": ("gaming", "nature"), "river": ("gaming", "nature"),
    "pixel_sprite": ("gaming", "cooking"), "flames": ("gaming", "cooking"),
    "health_hearts": ("gaming", "music"), "notes": ("gaming", "music"),
}
CATEGORY_TAGS: dict[str, tuple[str, ...]] = {c: tuple(t for t in TAGS if c in TAG_CATEGORIES[t]) for c in CATEGORIES}

#: Tags drawn per clip and their probabilities.
TAG_COUNTS, TAG_COUNT_P = (2, 3, 4), (0.3, 0.4, 0.3)
TAG_ZIPF = 1.0
_RANKING = [str(t) for t in np.random.default_rng(1919).permutation(TAGS)]
#: Relative frequency weight of each tag (rank r → 1 / (r + 1)^TAG_ZIPF).
TAG_WEIGHT: dict[str, float] = {tag: 1.0 / (rank + 1) ** TAG_ZIPF for rank, tag in enumerate(_RANKING)}

#: Small sprites (a few pixels at 64 px): what annotators systematically miss.
SMALL_TAGS = frozenset({"ball", "birds", "crosshair", "notes", "microphone", "pixel_sprite", "steam"})
_PAIRS = (("ball", "sun"), ("red_circle", "crosshair"), ("notes", "birds"), ("scoreboard", "hud_bar"),
          ("pot", "cutting_board"), ("steam", "flames"), ("health_hearts", "pixel_sprite"),
          ("equalizer", "stage_lights"))
#: Tags an annotator confuses (symmetric).
LOOKALIKE: dict[str, str] = {a: b for pair in _PAIRS for a, b in (pair, pair[::-1])}

#: Timeliness evidence modes and their probabilities.
EVIDENCE_MODES, EVIDENCE_P = ("joint", "title", "visual", "both"), (0.5, 0.2, 0.2, 0.1)
#: The title word of a joint clip narrows the class to one of these pairs, the badge to one of those.
TITLE_GROUPS: dict[str, tuple[str, str]] = {"title_a": ("hours", "weeks"), "title_b": ("days", "evergreen")}
VISUAL_GROUPS: dict[str, tuple[str, str]] = {"group_a": ("hours", "days"), "group_b": ("weeks", "evergreen")}
GROUP_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "title_a": {"en": ("Update:", "New:", "Fresh:"), "zh": ("更新", "新品")},
    "title_b": {"en": ("Watch:", "Story:", "Look:"), "zh": ("观看", "故事")},
}


def taxonomy_tag_categories() -> dict[str, list[str]]:
    return {tag: list(pair) for tag, pair in TAG_CATEGORIES.items()}


def category_of(tags: tuple[str, ...] | list[str]) -> set[str]:
    """The categories every one of ``tags`` belongs to."""
    common = set(CATEGORIES)
    for tag in tags:
        common &= set(TAG_CATEGORIES[tag])
    return common


def draw_category_and_tags(rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    category = str(rng.choice(CATEGORIES))
    own = CATEGORY_TAGS[category]
    weights = np.array([TAG_WEIGHT[t] for t in own])
    while True:
        count = int(rng.choice(TAG_COUNTS, p=TAG_COUNT_P))
        tags = tuple(sorted(rng.choice(own, size=count, replace=False, p=weights / weights.sum()).tolist()))
        if category_of(tags) == {category}:
            return category, tags


def noisy_tags(true_tags: tuple[str, ...], noise: float, rng: np.random.Generator) -> tuple[str, ...]:
    """Systematic omissions of small objects, look-alike confusions, rare random slips."""
    small_miss, confuse, miss, spurious = min(0.9, 2.5 * noise), min(0.9, 4 * noise / 3), noise / 3, noise / 3
    labelled = []
    for tag in true_tags:
        draw = rng.random(2)
        if tag in LOOKALIKE and draw[0] < confuse:
            labelled.append(LOOKALIKE[tag])
        elif draw[1] >= (small_miss if tag in SMALL_TAGS else miss):
            labelled.append(tag)
    if rng.random() < spurious:
        labelled.append(str(rng.choice([t for t in TAGS if t not in true_tags])))
    return tuple(sorted(set(labelled)))


def draw_timeliness(rng: np.random.Generator, title_noise: float) -> tuple[str, str, bool]:
    """(class, evidence mode, whether the title's cue is a wrong one)."""
    timeliness = str(rng.choice(TIMELINESS_CLASSES))
    mode = str(rng.choice(EVIDENCE_MODES, p=EVIDENCE_P))
    noisy = mode != "visual" and bool(rng.random() < title_noise)
    return timeliness, mode, noisy


def title_group(timeliness: str) -> str:
    return next(g for g, pair in TITLE_GROUPS.items() if timeliness in pair)


def visual_group(timeliness: str) -> str:
    return next(g for g, pair in VISUAL_GROUPS.items() if timeliness in pair)


def make_title(category: str, timeliness: str, mode: str, noisy: bool, rng: np.random.Generator) -> str:
    """A title about ``category``; its cue word depends on the evidence mode (and may be a wrong one)."""
    language = "zh" if rng.random() < 0.35 else "en"
    subject = str(rng.choice(SUBJECTS[category][language]))
    filler = str(rng.choice(FILLERS[language]))
    wrong = rng.random()  # drawn always: a noisy twin keeps every other word of the title
    cue = ""
    if mode == "joint":
        group = title_group(timeliness)
        if noisy:
            group = next(g for g in TITLE_GROUPS if g != group)
        cue = str(rng.choice(GROUP_WORDS[group][language]))
    elif mode in ("title", "both"):
        named = timeliness
        if noisy:
            others = [c for c in TIMELINESS_CLASSES if c != timeliness]
            named = others[int(wrong * len(others))]
        cue = str(rng.choice(CUE_WORDS[named][language]))
    if language == "zh":
        text = f"【{cue}】{subject}{filler}" if cue else f"{subject}{filler}"
    else:
        text = f"{cue} {subject} {filler}"
    return " ".join(text.split())


def badge_kind(timeliness: str, mode: str) -> str | None:
    """What the picture shows: the class's own badge, its pair's group badge, or nothing."""
    if mode == "joint":
        return visual_group(timeliness)
    return timeliness if mode in ("visual", "both") else None


def build_scene(tags: tuple[str, ...], width: int, height: int, scale: float, rng: np.random.Generator) -> Scene:
    """Any category's background (drawn independently of the clip's category), then the tag sprites."""
    background = _BACKGROUNDS[str(rng.choice(sorted(_BACKGROUNDS)))](rng, width, height, scale)
    background += rng.uniform(-4, 4, size=background.shape).astype(np.float32)
    moving = []
    for tag in tags:
        sprite = TAG_SPRITES[tag](rng, width, height, scale)
        if rng.random() < INTERMITTENT_RATE:
            sprite = sprite.intermittent(rng)
        if sprite.static:
            sprite.draw(background, 0.0)
        else:
            moving.append(sprite)
    return Scene(background, moving)


def draw_labels(rng: np.random.Generator, title_noise: float) -> dict:
    """Every label of a v2 clip from its label stream."""
    category, tags = draw_category_and_tags(rng)
    timeliness, mode, noisy = draw_timeliness(rng, title_noise)
    return {"category": category, "true_tags": tags, "timeliness": timeliness, "evidence_mode": mode,
            "title_noisy": noisy, "quality": str(rng.choice(QUALITY_GRADES)),
            "early_action": str(rng.choice(EARLY_ACTIONS))}
