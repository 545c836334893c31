"""One sprite per tag: a distinct shape, overlay or motion, sized to stay visible at 64x64.

The small moving sprites (birds, crosshair, notes, microphone, pixel sprite) have strokes of at
least 2.5 px at 160 px (1 px at 64): thinner, even the label teacher could hardly find them. They
remain the hardest tags (per-tag AP in docs/classifier.md).

A sprite factory takes (rng, width, height, scale) and returns a :class:`Sprite`; its ``draw(canvas,
t)`` paints time ``t`` (seconds). Static sprites are painted once into the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from video_world import draw

Draw = Callable[[np.ndarray, float], None]
WHITE, BLACK = (245, 245, 245), (15, 15, 20)


@dataclass(frozen=True)
class Sprite:
    draw: Draw
    static: bool

    def intermittent(self, rng: np.random.Generator) -> Sprite:
        """The same sprite, on screen for ``on`` seconds of every ``period``."""
        start, on = rng.uniform(0.0, 0.5), rng.uniform(0.35, 0.7)
        period = on + rng.uniform(0.3, 0.6)
        inner = self.draw

        def blinking(canvas: np.ndarray, t: float) -> None:
            if (t - start) % period < on:
                inner(canvas, t)

        return Sprite(blinking, static=False)


def _static(paint: Callable[[np.ndarray], None]) -> Sprite:
    return Sprite(lambda canvas, t: paint(canvas), static=True)


def _bounce(position: float, velocity: float, t: float, low: float, high: float) -> float:
    """Position of a point moving between ``low`` and ``high`` with reflections."""
    span = high - low
    phase = (position - low + velocity * t) % (2 * span)
    return low + (phase if phase < span else 2 * span - phase)


# --- news -------------------------------------------------------------------------------------------

def ticker(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    bar = (rng.uniform(120, 190), 20, 25)
    top = h - 14 * s
    lap = w + 40 * s
    blocks = np.cumsum(rng.uniform(9, 16, size=12) * s)
    widths = rng.uniform(4, 9, size=12) * s
    speed = rng.uniform(35, 55) * s

    def paint(canvas: np.ndarray, t: float) -> None:
        draw.rect(canvas, 0, top, w, h, bar)
        for x, width in zip((blocks - speed * t) % lap - 20 * s, widths):
            draw.rect(canvas, x, top + 4 * s, x + width, h - 4 * s, WHITE)

    return Sprite(paint, static=False)


def live_desk(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, top = rng.uniform(0.3, 0.7) * w, rng.uniform(0.62, 0.72) * h
    suit, skin = rng.uniform(20, 70, size=3), (225, 180, 150)

    def paint(canvas: np.ndarray) -> None:
        draw.disc(canvas, cx, top - 19 * s, 6.5 * s, skin)
        draw.rect(canvas, cx - 10 * s, top - 12 * s, cx + 10 * s, top + 2 * s, suit)
        draw.polygon(canvas, [(cx - 34 * s, top), (cx + 34 * s, top), (cx + 26 * s, top + 20 * s),
                              (cx - 26 * s, top + 20 * s)], (120, 75, 40))

    return _static(paint)


def map_inset(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    x0, y0 = rng.uniform(0.05, 0.6) * w, rng.uniform(0.1, 0.45) * h
    x1, y1 = x0 + 40 * s, y0 + 30 * s
    blobs = [(rng.uniform(x0 + 6 * s, x1 - 6 * s), rng.uniform(y0 + 6 * s, y1 - 6 * s), rng.uniform(4, 8) * s)
             for _ in range(3)]

    def paint(canvas: np.ndarray) -> None:
        draw.rect(canvas, x0 - 2 * s, y0 - 2 * s, x1 + 2 * s, y1 + 2 * s, WHITE)
        draw.rect(canvas, x0, y0, x1, y1, (120, 170, 230))
        for bx, by, r in blobs:
            draw.disc(canvas, bx, by, r, (90, 160, 70))

    return _static(paint)


def red_circle(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.7) * h, rng.uniform(10, 14) * s
    return _static(lambda canvas: draw.ring(canvas, cx, cy, r, 4.5 * s, (235, 25, 25)))


# --- sports -----------------------------------------------------------------------------------------

def ball(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    r = 7.5 * s
    x, y = rng.uniform(r, w - r), rng.uniform(r, h - r)
    vx, vy = rng.uniform(-60, 60) * s, rng.uniform(-60, 60) * s

    def paint(canvas: np.ndarray, t: float) -> None:
        bx, by = _bounce(x, vx, t, r, w - r), _bounce(y, vy, t, r, h - r)
        draw.disc(canvas, bx, by, r, WHITE)
        draw.disc(canvas, bx + r * 0.2, by - r * 0.1, r * 0.4, BLACK)

    return Sprite(paint, static=False)


def field_lines(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h

    def paint(canvas: np.ndarray) -> None:
        draw.line(canvas, (cx, 0), (cx, h), 2.2 * s, WHITE)
        draw.ring(canvas, cx, cy, 24 * s, 2.2 * s, WHITE)
        draw.line(canvas, (0, 0.08 * h), (w, 0.08 * h), 2.2 * s, WHITE)

    return _static(paint)


def scoreboard(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    x0, y0 = rng.uniform(0.05, 0.6) * w, rng.uniform(0.02, 0.1) * h

    def paint(canvas: np.ndarray) -> None:
        draw.rect(canvas, x0, y0, x0 + 46 * s, y0 + 15 * s, BLACK)
        for offset in (4, 12, 30, 38):
            draw.rect(canvas, x0 + offset * s, y0 + 3 * s, x0 + (offset + 5) * s, y0 + 12 * s, (250, 210, 30))
        draw.rect(canvas, x0 + 21 * s, y0 + 6 * s, x0 + 25 * s, y0 + 9 * s, WHITE)

    return _static(paint)


def goal_net(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    left = rng.random() < 0.5
    x0 = 2 * s if left else w - 30 * s
    y0 = rng.uniform(0.25, 0.5) * h
    x1, y1 = x0 + 28 * s, y0 + 40 * s

    def paint(canvas: np.ndarray) -> None:
        for gx in np.arange(x0, x1, 5 * s):
            draw.line(canvas, (gx, y0), (gx, y1), 1.0 * s, (225, 225, 225), alpha=0.8)
        for gy in np.arange(y0, y1, 5 * s):
            draw.line(canvas, (x0, gy), (x1, gy), 1.0 * s, (225, 225, 225), alpha=0.8)
        for a, b in (((x0, y0), (x1, y0)), ((x0, y0), (x0, y1)), ((x1, y0), (x1, y1))):
            draw.line(canvas, a, b, 3 * s, WHITE)

    return _static(paint)


# --- gaming -----------------------------------------------------------------------------------------

def hud_bar(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    health, mana = rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.9)
    y0 = rng.choice([2 * s, h - 14 * s])

    def paint(canvas: np.ndarray) -> None:
        draw.rect(canvas, 2 * s, y0, w - 2 * s, y0 + 12 * s, (50, 50, 55))
        draw.rect(canvas, 5 * s, y0 + 2 * s, 5 * s + health * 0.5 * w, y0 + 5.5 * s, (40, 220, 60))
        draw.rect(canvas, 5 * s, y0 + 7 * s, 5 * s + mana * 0.5 * w, y0 + 10 * s, (50, 110, 240))

    return _static(paint)


def crosshair(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    wobble, rate = rng.uniform(3, 8) * s, rng.uniform(1.5, 3.0)
    color = (60, 255, 90)

    def paint(canvas: np.ndarray, t: float) -> None:
        x, y = cx + wobble * np.sin(rate * t), cy + wobble * np.cos(1.3 * rate * t)
        draw.ring(canvas, x, y, 9 * s, 3.5 * s, color)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            draw.line(canvas, (x + dx * 4 * s, y + dy * 4 * s), (x + dx * 15 * s, y + dy * 15 * s), 3.5 * s, color)

    return Sprite(paint, static=False)


def pixel_sprite(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cells = rng.random((6, 6)) < 0.55
    cells[:, 3:] = cells[:, 2::-1]  # mirror: a symmetric little invader
    colors = [(250, 80, 200), (255, 230, 40), (0, 230, 230)]
    color = colors[int(rng.integers(len(colors)))]
    x, y, vx = rng.uniform(0, w), rng.uniform(0.2, 0.7) * h, rng.choice([-1, 1]) * rng.uniform(20, 40) * s
    cell = 5 * s

    def paint(canvas: np.ndarray, t: float) -> None:
        left = (x + vx * t) % (w + 30 * s) - 30 * s
        for row, col in zip(*np.nonzero(cells)):
            draw.rect(canvas, left + col * cell, y + row * cell, left + (col + 1) * cell, y + (row + 1) * cell, color)

    return Sprite(paint, static=False)


def health_hearts(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    count, x0, y0 = int(rng.integers(3, 6)), rng.uniform(0.03, 0.3) * w, rng.uniform(0.1, 0.3) * h

    def paint(canvas: np.ndarray) -> None:
        for i in range(count):
            cx = x0 + i * 13 * s
            draw.disc(canvas, cx - 2.6 * s, y0, 3.3 * s, (230, 30, 50))
            draw.disc(canvas, cx + 2.6 * s, y0, 3.3 * s, (230, 30, 50))
            draw.polygon(canvas, [(cx - 5.8 * s, y0 + 1 * s), (cx + 5.8 * s, y0 + 1 * s), (cx, y0 + 8 * s)],
                         (230, 30, 50))

    return _static(paint)


# --- nature -----------------------------------------------------------------------------------------

def sun(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, cy, r = rng.uniform(0.15, 0.85) * w, rng.uniform(0.1, 0.3) * h, rng.uniform(10, 14) * s

    def paint(canvas: np.ndarray) -> None:
        draw.disc(canvas, cx, cy, r * 1.6, (255, 240, 150), alpha=0.35)
        draw.disc(canvas, cx, cy, r, (255, 220, 40))

    return _static(paint)


def trees(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    stands = [(rng.uniform(0.1, 0.9) * w, rng.uniform(0.55, 0.85) * h, rng.uniform(0.8, 1.2)) for _ in range(3)]

    def paint(canvas: np.ndarray) -> None:
        for x, base, size in stands:
            draw.rect(canvas, x - 2.5 * s, base - 4 * s, x + 2.5 * s, base + 6 * s * size, (95, 60, 30))
            draw.polygon(canvas, [(x, base - 30 * s * size), (x - 11 * s * size, base), (x + 11 * s * size, base)],
                         (10, 50, 20))  # darker than any grass

    return _static(paint)


def river(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    y0, amplitude = rng.uniform(0.6, 0.8) * h, rng.uniform(3, 6) * s
    half, k, speed = 7 * s, rng.uniform(0.04, 0.08) / s, rng.uniform(2, 4)
    color = (60, 120, 220)

    def paint(canvas: np.ndarray, t: float) -> None:
        center = lambda x: y0 + amplitude * np.sin(k * x + speed * t)
        draw.paint(canvas, (0, y0 - amplitude - half, w, y0 + amplitude + half),
                   lambda x, y: abs(y - center(x)) - half, color)
        draw.paint(canvas, (0, y0 - amplitude - 2 * s, w, y0 + amplitude + 2 * s),
                   lambda x, y: abs(y - center(x + 9 * s) + 2 * s) - 0.7 * s, (190, 220, 255), alpha=0.8)

    return Sprite(paint, static=False)


def birds(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    flock = [(rng.uniform(0, w), rng.uniform(0.1, 0.45) * h, rng.uniform(0, 6)) for _ in range(int(rng.integers(3, 6)))]
    vx = rng.choice([-1, 1]) * rng.uniform(25, 45) * s

    def paint(canvas: np.ndarray, t: float) -> None:
        for x, y, phase in flock:
            bx = (x + vx * t) % (w + 20 * s) - 10 * s
            flap = 4 * s * np.sin(14 * t + phase)
            for side in (-1, 1):
                draw.line(canvas, (bx, y), (bx + side * 9 * s, y - flap), 3.5 * s, (25, 25, 30))

    return Sprite(paint, static=False)


# --- cooking ----------------------------------------------------------------------------------------

def pot(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, top = rng.uniform(0.3, 0.7) * w, rng.uniform(0.35, 0.55) * h

    def paint(canvas: np.ndarray) -> None:
        draw.rect(canvas, cx - 26 * s, top + 3 * s, cx - 16 * s, top + 8 * s, (60, 60, 65))
        draw.rect(canvas, cx + 16 * s, top + 3 * s, cx + 26 * s, top + 8 * s, (60, 60, 65))
        draw.rect(canvas, cx - 18 * s, top, cx + 18 * s, top + 26 * s, (150, 155, 165))
        draw.rect(canvas, cx - 20 * s, top - 2 * s, cx + 20 * s, top + 3 * s, (90, 92, 100))

    return _static(paint)


def flames(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, base = rng.uniform(0.25, 0.75) * w, rng.uniform(0.75, 0.92) * h
    tongues = [(cx + (i - 2) * 7 * s, rng.uniform(0, 6)) for i in range(5)]

    def paint(canvas: np.ndarray, t: float) -> None:
        for x, phase in tongues:
            height = (14 + 6 * np.sin(17 * t + phase)) * s
            draw.polygon(canvas, [(x - 4.5 * s, base), (x + 4.5 * s, base), (x, base - height)], (255, 120, 20))
            draw.polygon(canvas, [(x - 2 * s, base), (x + 2 * s, base), (x, base - 0.5 * height)], (255, 230, 80))

    return Sprite(paint, static=False)


def cutting_board(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    x0, y0 = rng.uniform(0.05, 0.5) * w, rng.uniform(0.55, 0.75) * h
    pieces = [(x0 + rng.uniform(8, 40) * s, y0 + rng.uniform(7, 17) * s, c)
              for c in ((60, 170, 50), (220, 40, 40), (250, 150, 20))]

    def paint(canvas: np.ndarray) -> None:
        draw.rect(canvas, x0, y0, x0 + 50 * s, y0 + 24 * s, (225, 190, 135))
        draw.rect(canvas, x0 + 50 * s, y0 + 9 * s, x0 + 60 * s, y0 + 15 * s, (150, 110, 70))
        for px, py, color in pieces:
            draw.disc(canvas, px, py, 4.5 * s, color)

    return _static(paint)


def steam(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, base = rng.uniform(0.25, 0.75) * w, rng.uniform(0.4, 0.6) * h
    puffs = [(rng.uniform(-8, 8) * s, rng.uniform(0, 1)) for _ in range(4)]
    rise = 35 * s

    def paint(canvas: np.ndarray, t: float) -> None:
        for dx, phase in puffs:
            age = (t * 0.8 + phase) % 1.0
            draw.disc(canvas, cx + dx + 4 * s * np.sin(6 * age), base - rise * age, (5 + 5 * age) * s,
                      (240, 240, 240), alpha=0.75 * (1 - age) + 0.15)

    return Sprite(paint, static=False)


# --- music ------------------------------------------------------------------------------------------

def stage_lights(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    beams = [(rng.uniform(0.1, 0.9) * w, rng.uniform(0, 6), c) for c in ((255, 255, 120), (120, 200, 255))]

    def paint(canvas: np.ndarray, t: float) -> None:
        for x, phase, color in beams:
            tip = x + 40 * s * np.sin(1.5 * t + phase)
            draw.polygon(canvas, [(x - 3 * s, 0), (x + 3 * s, 0), (tip + 18 * s, 0.8 * h), (tip - 18 * s, 0.8 * h)],
                         color, alpha=0.45)

    return Sprite(paint, static=False)


def notes(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    glyphs = [(rng.uniform(0.1, 0.9) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(0, 6)) for _ in range(3)]

    def paint(canvas: np.ndarray, t: float) -> None:
        for x, y, phase in glyphs:
            yy = y + 6 * s * np.sin(3 * t + phase)
            draw.disc(canvas, x, yy, 5 * s, WHITE)
            draw.line(canvas, (x + 4 * s, yy), (x + 4 * s, yy - 16 * s), 3 * s, WHITE)
            draw.line(canvas, (x + 4 * s, yy - 16 * s), (x + 10 * s, yy - 12 * s), 3 * s, WHITE)

    return Sprite(paint, static=False)


def equalizer(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    x0, base, count = rng.uniform(0.05, 0.5) * w, rng.uniform(0.8, 0.95) * h, 7
    rates, phases = rng.uniform(4, 12, size=count), rng.uniform(0, 6, size=count)

    def paint(canvas: np.ndarray, t: float) -> None:
        for i in range(count):
            height = (8 + 18 * (0.5 + 0.5 * np.sin(rates[i] * t + phases[i]))) * s
            x = x0 + i * 8 * s
            draw.rect(canvas, x, base - height, x + 6 * s, base, (60, 230, 90) if i % 2 else (250, 220, 50))

    return Sprite(paint, static=False)


def microphone(rng: np.random.Generator, w: int, h: int, s: float) -> Sprite:
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.3, 0.55) * h

    def paint(canvas: np.ndarray) -> None:
        draw.line(canvas, (cx, cy), (cx + 4 * s, cy + 40 * s), 4.5 * s, (40, 40, 45))
        draw.disc(canvas, cx, cy, 10 * s, (190, 190, 200))
        draw.ring(canvas, cx, cy, 6 * s, 2.5 * s, (90, 90, 100))

    return _static(paint)


TAG_SPRITES: dict[str, Callable[[np.random.Generator, int, int, float], Sprite]] = {
    "ticker": ticker, "live_desk": live_desk, "map_inset": map_inset, "red_circle": red_circle,
    "ball": ball, "field_lines": field_lines, "scoreboard": scoreboard, "goal_net": goal_net,
    "hud_bar": hud_bar, "crosshair": crosshair, "pixel_sprite": pixel_sprite, "health_hearts": health_hearts,
    "sun": sun, "trees": trees, "river": river, "birds": birds,
    "pot": pot, "flames": flames, "cutting_board": cutting_board, "steam": steam,
    "stage_lights": stage_lights, "notes": notes, "equalizer": equalizer, "microphone": microphone,
}
