"""Timeliness cues in the picture: one overlay badge per class, in a random corner.

hours: a blinking red LIVE badge; days: a white date strip; weeks: a calendar icon; evergreen: a
green leaf badge. A clip whose picture carries no evidence shows none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from video_world import draw

WHITE, DARK = (245, 245, 245), (30, 30, 35)
LIVE_RED = (225, 20, 30)
#: Badge width and height at 160 px, per class (and, for world v2, per pair of classes: ``group_*``).
BADGE_SIZE: dict[str, tuple[float, float]] = {
    "hours": (30, 13), "days": (44, 11), "weeks": (18, 18), "evergreen": (20, 20),
    "group_a": (16, 16), "group_b": (16, 16),
}
LIVE_PERIOD, LIVE_ON = 12, 9  # frames: the LIVE badge is shown 9 frames out of every 12


@dataclass(frozen=True)
class Badge:
    timeliness: str
    x0: float
    y0: float
    scale: float
    phase: int
    layer: np.ndarray = field(init=False, repr=False, compare=False)  # painted once, composited per frame

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        layer = np.zeros((int(np.ceil(y1)) - int(y0) + 2, int(np.ceil(x1)) - int(x0) + 2, 4), np.float32)
        _PAINTERS[self.timeliness](layer, self.x0 - int(self.x0), self.y0 - int(self.y0), self.scale)
        object.__setattr__(self, "layer", layer)

    @property
    def box(self) -> tuple[float, float, float, float]:
        width, height = BADGE_SIZE[self.timeliness]
        return self.x0, self.y0, self.x0 + width * self.scale, self.y0 + height * self.scale

    def visible(self, frame: int) -> bool:
        return self.timeliness != "hours" or (frame + self.phase) % LIVE_PERIOD < LIVE_ON

    def draw(self, canvas: np.ndarray, frame: int) -> None:
        if self.visible(frame):
            draw.composite(canvas, self.layer, int(self.x0), int(self.y0))


def place_badge(timeliness: str, width: int, height: int, scale: float, rng: np.random.Generator) -> Badge:
    badge_w, badge_h = (v * scale for v in BADGE_SIZE[timeliness])
    margin = rng.uniform(3, 10, size=2) * scale
    right, bottom = rng.random(2) < 0.5
    x0 = width - badge_w - margin[0] if right else margin[0]
    y0 = height - badge_h - margin[1] - 16 * scale if bottom else margin[1] + 16 * scale  # clear of bars
    return Badge(timeliness, float(x0), float(y0), scale, int(rng.integers(LIVE_PERIOD)))


def _live(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    draw.rect(canvas, x, y, x + 30 * s, y + 13 * s, LIVE_RED)
    draw.disc(canvas, x + 5.5 * s, y + 6.5 * s, 2.5 * s, WHITE)
    for left in (10, 16, 22):  # three letter blocks: "LIVE" at this size
        draw.rect(canvas, x + left * s, y + 3 * s, x + (left + 4) * s, y + 10 * s, WHITE)


def _date(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    draw.rect(canvas, x, y, x + 44 * s, y + 11 * s, WHITE)
    draw.rect(canvas, x + 2 * s, y + 2 * s, x + 8 * s, y + 9 * s, (40, 90, 220))
    for left in (11, 16, 24, 29, 37):
        draw.rect(canvas, x + left * s, y + 2.5 * s, x + (left + 3.5) * s, y + 8.5 * s, DARK)
    draw.rect(canvas, x + 21 * s, y + 7 * s, x + 22.5 * s, y + 8.5 * s, DARK)


def _calendar(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    draw.rect(canvas, x, y, x + 18 * s, y + 18 * s, WHITE)
    draw.rect(canvas, x, y, x + 18 * s, y + 5 * s, LIVE_RED)
    for row in range(3):
        for col in range(3):
            cx, cy = x + (3 + col * 5) * s, y + (7.5 + row * 3.5) * s
            draw.rect(canvas, cx, cy, cx + 2.5 * s, cy + 2 * s, DARK)


def _leaf(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    cx, cy = x + 10 * s, y + 10 * s
    draw.disc(canvas, cx, cy, 10 * s, (25, 110, 45))
    draw.polygon(canvas, [(cx - 6 * s, cy + 6 * s), (cx - 3 * s, cy - 4 * s), (cx + 6 * s, cy - 6 * s),
                          (cx + 3 * s, cy + 4 * s)], (140, 230, 110))
    draw.line(canvas, (cx - 5 * s, cy + 5 * s), (cx + 5 * s, cy - 5 * s), 1.2 * s, (25, 110, 45))


def _group_a(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    """World v2: the badge of "hours or days" — a red dot in a white ring."""
    draw.disc(canvas, x + 8 * s, y + 8 * s, 8 * s, WHITE)
    draw.disc(canvas, x + 8 * s, y + 8 * s, 5.5 * s, (210, 40, 40))


def _group_b(canvas: np.ndarray, x: float, y: float, s: float) -> None:
    """World v2: the badge of "weeks or evergreen" — a blue square in a white frame."""
    draw.rect(canvas, x, y, x + 16 * s, y + 16 * s, WHITE)
    draw.rect(canvas, x + 3 * s, y + 3 * s, x + 13 * s, y + 13 * s, (40, 80, 210))


_PAINTERS = {"hours": _live, "days": _date, "weeks": _calendar, "evergreen": _leaf,
             "group_a": _group_a, "group_b": _group_b}
