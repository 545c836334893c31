"""Every label of the synthetic world, shared by the generator, the trainers and the tests."""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = ("news", "sports", "gaming", "nature", "cooking", "music")

#: Each tag implies exactly one category.
TAG_CATEGORY: dict[str, str] = {
    "ticker": "news", "live_desk": "news", "map_inset": "news", "red_circle": "news",
    "ball": "sports", "field_lines": "sports", "scoreboard": "sports", "goal_net": "sports",
    "hud_bar": "gaming", "crosshair": "gaming", "pixel_sprite": "gaming", "health_hearts": "gaming",
    "sun": "nature", "trees": "nature", "river": "nature", "birds": "nature",
    "pot": "cooking", "flames": "cooking", "cutting_board": "cooking", "steam": "cooking",
    "stage_lights": "music", "notes": "music", "equalizer": "music", "microphone": "music",
}
TAGS: tuple[str, ...] = tuple(TAG_CATEGORY)

QUALITY_GRADES: tuple[str, ...] = ("excellent", "good", "fair", "poor")

TIMELINESS_CLASSES: tuple[str, ...] = ("hours", "days", "weeks", "evergreen")
#: How long a video of each class stays relevant (used as ``ttl_hours`` in tag records).
TIMELINESS_TTL_HOURS: dict[str, int] = {"hours": 6, "days": 72, "weeks": 504, "evergreen": 8760}

EARLY_ACTIONS: tuple[str, ...] = ("keep_straight", "turn_left", "turn_right", "lane_change", "u_turn", "stop")


def taxonomy(world: str = "v1") -> dict:
    """The world's ``taxonomy.json`` (docs/datasets.md): label sets and their order, TTLs, tag→category.

    World v2 has no tag→category map: each of its tags belongs to two categories.
    """
    if world == "v2":
        return {key: value for key, value in taxonomy().items() if key != "tag_category"}
    return {
        "categories": list(CATEGORIES),
        "tags": list(TAGS),
        "tag_category": dict(TAG_CATEGORY),
        "quality_grades": list(QUALITY_GRADES),
        "timeliness": [{"name": name, "ttl_hours": TIMELINESS_TTL_HOURS[name]} for name in TIMELINESS_CLASSES],
        "actions": list(EARLY_ACTIONS),
    }
