"""The early-action agent: a car (40x24 px at 160 px) whose manoeuvre starts at 40-50 % of the clip.

Only temporal cues foreshadow it in the first 10 % (the early_action window), none of which a single
frame shows:

============  ================================================  =====================================
action        first 10 %                                        later
============  ================================================  =====================================
keep_straight constant speed                                    keeps going
turn_left     left indicator blinking (4-frame period)          turns 90 degrees left
turn_right    right indicator blinking                          turns 90 degrees right
lane_change   slow sideways drift (6-9 px at 160 px)            shifts one lane sideways
u_turn        left indicator blinking + brake lights come on    slow 180-degree turn, drives back
stop          brake lights come on, the car slows down          comes to a halt and stays
============  ================================================  =====================================

Every lamp that carries no cue is steadily lit with probability 0.5 (a fault, or lights left on),
which is the blinking duty cycle, so a lit indicator or brake lamp in one frame says little; the
brake lights of a braking car switch on at a random frame of the window (2nd to 6th), so it is the
switching that tells. Start position, speed and direction of travel (left or right along the road,
a few degrees off) are random, so position and speed alone say nothing either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_world import draw

LEFT, RIGHT = -1, 1  # image coordinates have y pointing down: a left turn lowers the heading angle
BLINKS_LEFT = {"turn_left", "u_turn"}
BLINKS_RIGHT = {"turn_right"}
BRAKES = {"stop", "u_turn"}
STEADY_LAMP_RATE = 0.5  # = the blinking duty cycle: one frame's lamp state says little
CUE_FRACTION = 0.1  # the early window the cues live in, as a fraction of the clip
BRAKE_ONSET_FRAMES = (1, 6)  # the brake lights switch on at one of these frames of the window (inclusive)
LAMP_ON, LAMP_OFF = (255, 190, 0), (45, 40, 35)
BRAKE_ON, BRAKE_OFF = (255, 30, 30), (70, 25, 25)
CAR_LENGTH, CAR_WIDTH = 40.0, 24.0  # at 160 px
LAMP_ALONG, LAMP_SIDE, LAMP_SIZE = (16.0, -16.0), 9.0, 8.0  # indicator centres from the car's centre
BRAKE_ALONG, BRAKE_SIDE = -19.0, 6.0  # brake lamps: at the rear, either side of the centre line
#: No red or amber bodies: the lamps must stand out on every car.
BODY_COLORS = ((225, 225, 230), (160, 165, 175), (40, 80, 200), (30, 30, 35), (30, 140, 70), (120, 60, 160))


@dataclass(frozen=True)
class AgentPath:
    """Per-frame pose and lamp states of the car."""

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    lamp_left: np.ndarray  # bool per frame
    lamp_right: np.ndarray
    brake: np.ndarray
    body: tuple[int, int, int]
    scale: float

    def draw(self, canvas: np.ndarray, frame: int) -> None:
        x, y, heading, s = self.x[frame], self.y[frame], self.heading[frame], self.scale
        ux, uy = np.cos(heading), np.sin(heading)
        draw.oriented_rect(canvas, x, y, (CAR_LENGTH + 2) * s, (CAR_WIDTH + 2) * s, heading, (10, 10, 12))
        draw.oriented_rect(canvas, x, y, CAR_LENGTH * s, CAR_WIDTH * s, heading, self.body)
        draw.oriented_rect(canvas, x + 8 * s * ux, y + 8 * s * uy, 6 * s, 18 * s, heading, (40, 60, 90))  # windscreen
        half = LAMP_SIZE / 2 * s
        for side, lit in ((LEFT, self.lamp_left[frame]), (RIGHT, self.lamp_right[frame])):
            color = LAMP_ON if lit else LAMP_OFF
            nx, ny = -side * uy, side * ux  # towards this side of the car
            for along in LAMP_ALONG:
                lx, ly = x + along * s * ux + LAMP_SIDE * s * nx, y + along * s * uy + LAMP_SIDE * s * ny
                draw.rect(canvas, lx - half, ly - half, lx + half, ly + half, color)
            # a side repeater strip between the two lamps
            draw.oriented_rect(canvas, x + 12.5 * s * nx, y + 12.5 * s * ny, 14 * s, 3 * s, heading, color)
        brake = BRAKE_ON if self.brake[frame] else BRAKE_OFF
        for side in (LEFT, RIGHT):
            nx, ny = -side * uy, side * ux
            bx, by = x + BRAKE_ALONG * s * ux + BRAKE_SIDE * s * nx, y + BRAKE_ALONG * s * uy + BRAKE_SIDE * s * ny
            draw.oriented_rect(canvas, bx, by, 5 * s, 9 * s, heading, (10, 10, 12))
            draw.oriented_rect(canvas, bx, by, 4 * s, 8 * s, heading, brake)


def plan_path(action: str, frames: int, fps: int, width: int, height: int, scale: float,
              rng: np.random.Generator) -> AgentPath:
    t = np.arange(frames, dtype=np.float64) / fps
    duration = frames / fps
    cue_end = CUE_FRACTION * duration
    start = rng.uniform(0.40, 0.50) * duration  # the manoeuvre itself
    speed0 = rng.uniform(30, 60) * scale
    heading0 = rng.integers(2) * np.pi + rng.uniform(-0.05, 0.05)  # along the road, either way
    speed = _speed(action, t, speed0, cue_end, start, duration)
    heading = heading0 + _turn(action, t, start, duration)
    x = rng.uniform(0.3, 0.7) * width + np.cumsum(speed * np.cos(heading)) / fps
    y = rng.uniform(0.3, 0.7) * height + np.cumsum(speed * np.sin(heading)) / fps
    lateral = _lateral(action, t, start, duration, scale, rng)
    x, y = x - lateral * np.sin(heading0), y + lateral * np.cos(heading0)
    left, right = _indicators(action, frames, rng)
    brake = _brake_lights(action, frames, cue_end * fps, rng)
    body = BODY_COLORS[int(rng.integers(len(BODY_COLORS)))]
    return AgentPath(x, y, heading, left, right, brake, body, scale)


def _speed(action: str, t: np.ndarray, speed0: float, cue_end: float, start: float, duration: float) -> np.ndarray:
    if action not in BRAKES:
        return np.full_like(t, speed0)
    # Braking: down to 40 % of the speed by the end of the cue window, then ...
    braked = speed0 * (1 - 0.6 * np.clip(t / cue_end, 0, 1))
    if action == "stop":  # ... on to a halt when the manoeuvre starts
        fade = np.clip((t - cue_end) / (start - cue_end), 0, 1)
        return braked * (1 - fade)
    slow = 0.4 * speed0  # u_turn: crawl through the turn, then speed up again
    back = np.clip((t - start - 0.15 * duration) / (0.1 * duration), 0, 1)
    return np.where(t < cue_end, braked, slow + back * (speed0 - slow))


def _turn(action: str, t: np.ndarray, start: float, duration: float) -> np.ndarray:
    angles = {"turn_left": -np.pi / 2, "turn_right": np.pi / 2, "u_turn": -np.pi}
    if action not in angles:
        return np.zeros_like(t)
    length = (0.15 if action == "u_turn" else 0.1) * duration
    progress = np.clip((t - start) / length, 0, 1)
    return angles[action] * (0.5 - 0.5 * np.cos(np.pi * progress))


def _lateral(action: str, t: np.ndarray, start: float, duration: float, scale: float,
             rng: np.random.Generator) -> np.ndarray:
    """Sideways offset (positive = to the right of the initial heading)."""
    side, rate = rng.choice([LEFT, RIGHT]), rng.uniform(6, 9)  # drawn for every action: twins stay twins
    if action != "lane_change":
        return np.zeros_like(t)
    cue_end = CUE_FRACTION * duration
    drift = rate * scale * np.minimum(t, 2 * cue_end) / cue_end  # 6 to 9 px over the cue window
    shift = 24 * scale * np.clip((t - start) / (0.1 * duration), 0, 1)
    return side * (drift + shift)


def _indicators(action: str, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    phase = int(rng.integers(4))
    blinking = ((np.arange(frames) + phase) % 4) < 2  # 4-frame period: on, on, off, off
    steady = rng.random(2) < STEADY_LAMP_RATE
    left = blinking if action in BLINKS_LEFT else np.full(frames, steady[0])
    right = blinking if action in BLINKS_RIGHT else np.full(frames, steady[1])
    return left, right


def _brake_lights(action: str, frames: int, window_frames: float, rng: np.random.Generator) -> np.ndarray:
    """Braking: off, then on from a frame inside the window; otherwise steadily on or off."""
    low, high = BRAKE_ONSET_FRAMES
    onset = int(rng.integers(low, min(high, max(low, int(window_frames) - 2)) + 1))
    steady = rng.random() < STEADY_LAMP_RATE
    if action in BRAKES:
        return np.arange(frames) >= onset
    return np.full(frames, steady)
