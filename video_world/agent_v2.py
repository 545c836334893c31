"""The v2 early-action agent: cues spread over the first 20 % of a long clip, the first one early.

Made for 30 s clips (``make-dataset --world v2 --seconds 30 --fps 12``: the first 20 % is 6 s, 72 frames).
Times below are seconds from the start; the manoeuvre itself starts at 40-50 % of the clip as in v1.

=============  ==================================================================================
action         cues
=============  ==================================================================================
keep_straight  none
turn_left      a left-indicator burst that starts at 0.2-1.0 s and lasts 1.0-1.5 s, then stops
turn_right     the same burst on the right
lane_change    a burst on the side of the change, and a sideways drift towards it from 0.6-2.0 s
u_turn         a left burst, then the brake lights come on at 1.2-3.6 s and the car slows down
stop           the brake lights come on at 1.2-3.6 s and the car slows down
=============  ==================================================================================

So the burst is over before the brake lights come on: telling a u_turn from a turn_left, or a
lane_change from a turn, needs the early burst remembered when the later cue comes. A quarter of
the brake onsets fall after 3 s, so the first 10 % leaves some stops and u-turns undecided and the
first 20 % none. Lamps that carry no cue are steadily lit on half of the clips (v1's rule). The car
moves slowly (2-5 px/s at 160 px) so that it stays in view over the whole window.
"""

from __future__ import annotations

import numpy as np

from video_world.agent import (
    BODY_COLORS,
    BRAKES,
    LEFT,
    RIGHT,
    STEADY_LAMP_RATE,
    AgentPath,
)

BURST_START, BURST_LENGTH = (0.2, 1.0), (1.0, 1.5)
BRAKE_ONSET = (1.2, 3.6)
DRIFT_START, DRIFT_RATE = (0.6, 2.0), (5.0, 7.0)  # px/s at 160 px
SPEED = (2.0, 5.0)  # px/s at 160 px
BLINK_PERIOD_FRAMES = 4  # on, on, off, off (3 Hz at 12 fps)
BURST_SIDE = {"turn_left": LEFT, "u_turn": LEFT, "turn_right": RIGHT}


def plan_path(action: str, frames: int, fps: int, width: int, height: int, scale: float,
              rng: np.random.Generator) -> AgentPath:
    t = np.arange(frames, dtype=np.float64) / fps
    duration = frames / fps
    # every draw happens for every action, so two clips that differ only in the action stay twins
    burst_start, burst_length = rng.uniform(*BURST_START), rng.uniform(*BURST_LENGTH)
    onset, drift_start, drift_rate = rng.uniform(*BRAKE_ONSET), rng.uniform(*DRIFT_START), rng.uniform(*DRIFT_RATE)
    change_side = LEFT if rng.random() < 0.5 else RIGHT
    steady = rng.random(3) < STEADY_LAMP_RATE
    phase = int(rng.integers(BLINK_PERIOD_FRAMES))
    speed0 = rng.uniform(*SPEED) * scale
    heading0 = rng.integers(2) * np.pi + rng.uniform(-0.05, 0.05)
    start = rng.uniform(0.40, 0.50) * duration  # the manoeuvre itself
    x0, y0 = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    body = BODY_COLORS[int(rng.integers(len(BODY_COLORS)))]

    side = BURST_SIDE.get(action, change_side if action == "lane_change" else None)
    blinking = ((np.arange(frames) + phase) % BLINK_PERIOD_FRAMES) < BLINK_PERIOD_FRAMES // 2
    in_burst = (t >= burst_start) & (t < burst_start + burst_length)
    left, right = np.full(frames, steady[0]), np.full(frames, steady[1])
    if side == LEFT:
        left = np.where(in_burst, blinking, left)
    elif side == RIGHT:
        right = np.where(in_burst, blinking, right)
    brake = t >= onset if action in BRAKES else np.full(frames, steady[2])

    speed = np.full_like(t, speed0)
    if action in BRAKES:  # slows to 40 % over 2 s after the onset; a stop then halts at the manoeuvre
        speed = speed0 * (1 - 0.6 * np.clip((t - onset) / 2.0, 0, 1))
        if action == "stop":
            speed = speed * (1 - np.clip((t - start) / (0.05 * duration), 0, 1))
    heading = heading0 + _turn(action, t, start, duration)
    x = x0 + np.cumsum(speed * np.cos(heading)) / fps
    y = y0 + np.cumsum(speed * np.sin(heading)) / fps
    lateral = np.zeros_like(t)
    if action == "lane_change":
        drift = drift_rate * scale * np.clip(t - drift_start, 0, None)
        shift = 24 * scale * np.clip((t - start) / (0.05 * duration), 0, 1)
        lateral = change_side * np.minimum(drift, 12 * scale) + change_side * shift
    x, y = x - lateral * np.sin(heading0), y + lateral * np.cos(heading0)
    return AgentPath(x, y, heading, left, right, brake, body, scale)


def _turn(action: str, t: np.ndarray, start: float, duration: float) -> np.ndarray:
    angles = {"turn_left": -np.pi / 2, "turn_right": np.pi / 2, "u_turn": -np.pi}
    if action not in angles:
        return np.zeros_like(t)
    progress = np.clip((t - start) / (0.05 * duration), 0, 1)
    return angles[action] * (0.5 - 0.5 * np.cos(np.pi * progress))
