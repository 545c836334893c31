"""The scene of a clip: a category background (drawn once) and its tag sprites (drawn per frame).

Each category has its own palette and layout, with hue jitter wide enough that neighbouring
categories overlap in colour; a quarter of the clips borrow another category's background, so the
tags, not the background alone, decide the category.
A fine static texture gives clean clips real high-frequency detail for blur to remove.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from video_world.tags import TAG_SPRITES, Sprite

#: Category -> (base hue, saturation, value) of its palette.
PALETTES: dict[str, tuple[float, float, float]] = {
    "news": (0.60, 0.55, 0.55),
    "sports": (0.32, 0.60, 0.55),
    "gaming": (0.74, 0.60, 0.22),
    "nature": (0.52, 0.40, 0.85),
    "cooking": (0.08, 0.55, 0.62),
    "music": (0.86, 0.60, 0.28),
}

#: Probability that a tag is on screen only part of the time (per-frame tags differ from pooled tags).
INTERMITTENT_RATE = 0.3
#: Probability that a clip is shot on another category's background: then only its tags tell the category.
BORROWED_BACKGROUND_RATE = 0.25


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, np.clip(s, 0, 1), np.clip(v, 0, 1)), np.float32) * 255


@dataclass
class Scene:
    background: np.ndarray  # float32 [H, W, 3], static tags already painted
    moving: list[Sprite]

    def render(self, t: float) -> np.ndarray:
        canvas = self.background.copy()
        for sprite in self.moving:
            sprite.draw(canvas, t)
        return canvas


def build_scene(category: str, tags: tuple[str, ...], width: int, height: int, scale: float,
                rng: np.random.Generator) -> Scene:
    if rng.random() < BORROWED_BACKGROUND_RATE:
        category = str(rng.choice([other for other in _BACKGROUNDS if other != category]))
    background = _BACKGROUNDS[category](rng, width, height, scale)
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


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(width, dtype=np.float32)[None, :], np.arange(height, dtype=np.float32)[:, None])


def _jittered(category: str, rng: np.random.Generator) -> tuple[float, float, float]:
    h, s, v = PALETTES[category]
    return h + rng.uniform(-0.06, 0.06), s + rng.uniform(-0.15, 0.15), v + rng.uniform(-0.12, 0.12)


def _gradient(top: np.ndarray, bottom: np.ndarray, height: int, width: int) -> np.ndarray:
    w = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - w) + bottom * w, (height, width, 3)).copy()


def _news(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("news", rng)
    canvas = _gradient(hsv(h, s, v * 0.6), hsv(h, s * 0.8, v * 1.3), height, width)
    _, y = _grid(width, height)
    canvas += (12 * (np.floor(y / (5 * scale)) % 2))[..., None]  # studio wall panels
    return canvas


def _sports(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("sports", rng)
    canvas = np.broadcast_to(hsv(h, s, v), (height, width, 3)).copy()
    x, _ = _grid(width, height)
    stripe = 14 * scale * rng.uniform(0.8, 1.3)
    canvas += (18 * (np.floor(x / stripe) % 2) - 9)[..., None]  # mowing stripes
    return canvas


def _gaming(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("gaming", rng)
    canvas = np.broadcast_to(hsv(h, s, v), (height, width, 3)).copy()
    x, y = _grid(width, height)
    step = 16 * scale * rng.uniform(0.8, 1.2)
    on_line = ((x % step) < 1.2) | ((y % step) < 1.2)
    canvas[on_line] = canvas[on_line] * 0.5 + hsv(h + 0.3, 0.8, 0.7) * 0.5  # neon grid
    return canvas


def _nature(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("nature", rng)
    horizon = int(height * rng.uniform(0.40, 0.60))
    canvas = _gradient(hsv(h, s, v), hsv(h, s * 0.4, min(v * 1.1, 1.0)), height, width)
    ground = hsv(0.27 + rng.uniform(-0.06, 0.04), 0.6, 0.45)
    canvas[horizon:] = ground
    canvas[horizon:] += rng.uniform(-14, 14, size=canvas[horizon:].shape[:2])[..., None]  # grass texture
    return canvas


def _cooking(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("cooking", rng)
    canvas = np.broadcast_to(hsv(h, s, v), (height, width, 3)).copy()
    x, y = _grid(width, height)
    grain = np.sin(y / (1.6 * scale) + 3 * np.sin(x / (23 * scale) + rng.uniform(0, 6)))  # wood grain
    canvas += (14 * grain)[..., None]
    return canvas


def _music(rng: np.random.Generator, width: int, height: int, scale: float) -> np.ndarray:
    h, s, v = _jittered("music", rng)
    canvas = np.broadcast_to(hsv(h, s, v), (height, width, 3)).copy()
    x, y = _grid(width, height)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.6) * height
    glow = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (40 * scale) ** 2))
    canvas += glow[..., None] * (hsv(h + 0.05, s, 0.9) - canvas) * 0.6
    return canvas


_BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int, float], np.ndarray]] = {
    "news": _news, "sports": _sports, "gaming": _gaming, "nature": _nature, "cooking": _cooking, "music": _music,
}
