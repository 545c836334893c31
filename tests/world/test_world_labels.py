"""The labels say what the pixels show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy
from video_world.agent import BRAKE_ALONG, BRAKE_ON, BRAKE_SIDE, BRAKES, LAMP_ALONG, LAMP_ON, LAMP_SIDE
from video_world.degrade import POOR_BLOCK_PX
from video_world.render import layout, render_clip, write_clip
from video_world.spec import ClipSpec, WorldOptions, sample_clip

CLASSIFIER_POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
OPTIONS = WorldOptions(width=160, height=160, seconds=1.2)


def _spec(**labels: object) -> ClipSpec:
    return sample_clip(seed=5, index=3, options=OPTIONS).replace(**labels)


def _served_frames(spec: ClipSpec, tmp_path: Path) -> np.ndarray:
    """The 64x64 frames the classifier engine would see."""
    path = tmp_path / f"{spec.quality}-{spec.visual_evidence}.mp4"
    write_clip(spec, path)
    return make_decoder("pyav").decode(str(path), [CLASSIFIER_POLICY]).frames[CLASSIFIER_POLICY].astype(np.float32)


def _laplacian_variance(frames: np.ndarray) -> float:
    gray = frames.mean(axis=-1)
    lap = (gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:] - 4 * gray[:, 1:-1, 1:-1])
    return float(lap.var())


def test_fair_clip_is_blurrier_than_its_clean_twin_after_serving_decode(tmp_path: Path) -> None:
    clean = _served_frames(_spec(quality="excellent"), tmp_path)
    fair = _served_frames(_spec(quality="fair"), tmp_path)
    assert _laplacian_variance(fair) < 0.6 * _laplacian_variance(clean)


def test_good_clip_flickers_with_noise_its_clean_twin_lacks(tmp_path: Path) -> None:
    clean = _served_frames(_spec(quality="excellent"), tmp_path)
    good = _served_frames(_spec(quality="good"), tmp_path)
    # Residual after removing the clip's mean picture: noise makes every frame differ from it.
    residual = lambda frames: float(np.abs(frames - np.median(frames, axis=0)).mean())
    assert residual(good) > residual(clean) + 1.0


def _block_edge_ratio(frames: np.ndarray, block: int) -> float:
    """Column-to-column change on block boundaries over the change inside blocks (of the mean frame,
    in which the temporal noise averages out)."""
    mean_gray = frames.astype(np.float32).mean(axis=(0, 3))
    change = np.abs(np.diff(mean_gray, axis=1)).mean(axis=0)
    on_edge = (np.arange(change.size) % block) == block - 1
    return float(change[on_edge].mean() / change[~on_edge].mean())


def test_poor_clip_is_made_of_blocks_its_clean_twin_lacks() -> None:
    poor = render_clip(_spec(quality="poor"))
    clean = render_clip(_spec(quality="excellent"))
    assert _block_edge_ratio(poor, block=POOR_BLOCK_PX) > 2.0 * _block_edge_ratio(clean, block=POOR_BLOCK_PX)


@pytest.mark.parametrize("timeliness", ["hours", "days", "weeks", "evergreen"])
def test_visual_evidence_puts_the_badge_in_the_picture(timeliness: str) -> None:
    spec = _spec(timeliness=timeliness, visual_evidence=True, quality="excellent")
    badge = layout(spec).badge
    assert badge is not None
    frame = next(f for f in range(OPTIONS.frames) if badge.visible(f))
    with_badge = render_clip(spec)[frame].astype(np.int16)
    without = render_clip(spec.replace(visual_evidence=False))[frame].astype(np.int16)
    x0, y0, x1, y1 = (round(v) for v in badge.box)
    inside = np.abs(with_badge - without)[y0:y1, x0:x1].mean()
    outside = np.abs(with_badge - without)
    outside[y0 - 2:y1 + 2, x0 - 2:x1 + 2] = 0
    assert inside > 20 and outside.max() == 0


def test_hours_badge_is_live_red_and_blinks() -> None:
    spec = _spec(timeliness="hours", visual_evidence=True, quality="excellent")
    badge = layout(spec).badge
    frames = render_clip(spec).astype(np.int16)
    x0, y0, x1, y1 = (round(v) for v in badge.box)
    red = lambda f: float(((f[..., 0] > 180) & (f[..., 1] < 80) & (f[..., 2] < 80))[y0:y1, x0:x1].mean())
    shown = [red(frames[f]) for f in range(len(frames)) if badge.visible(f)]
    hidden = [red(frames[f]) for f in range(len(frames)) if not badge.visible(f)]
    assert min(shown) > 0.4 and hidden and max(hidden) < min(shown) / 2


def _lamp_pixels(spec: ClipSpec, side: int) -> np.ndarray:
    """RGB of the car's front lamp on ``side`` (-1 left, +1 right) in every rendered frame."""
    path = layout(spec).agent
    frames = render_clip(spec)
    s = spec.options.scale
    ux, uy = np.cos(path.heading), np.sin(path.heading)
    along, aside = LAMP_ALONG[0] * s, LAMP_SIDE * s
    lx = np.round(path.x + along * ux - side * aside * uy - 0.5).astype(int)
    ly = np.round(path.y + along * uy + side * aside * ux - 0.5).astype(int)
    inside = (lx >= 0) & (lx < spec.options.width) & (ly >= 0) & (ly < spec.options.height)
    return frames[np.arange(len(frames))[inside], ly[inside], lx[inside]].astype(int)


def _amber(pixels: np.ndarray) -> np.ndarray:
    return np.all(np.abs(pixels - np.asarray(LAMP_ON)) < 40, axis=-1)


def _no_steady_lamps(action: str) -> ClipSpec:
    """A clip with ``action`` whose car has no faulty steadily lit lamp (so only blinking lights it)."""
    for index in range(200):
        spec = sample_clip(5, index, OPTIONS).replace(early_action=action, quality="excellent", visual_evidence=False)
        path = layout(spec).agent
        if not path.lamp_left.all() and not path.lamp_right.all():
            return spec
    raise AssertionError("no clip without steady lamps in 200 tries")


def test_turn_left_blinks_the_left_indicator_with_a_four_frame_period() -> None:
    lit = _amber(_lamp_pixels(_no_steady_lamps("turn_left"), side=-1))[:10]
    assert 4 <= lit.sum() <= 6  # on, on, off, off
    assert all(lit[i] == lit[i + 4] for i in range(6))
    assert not _amber(_lamp_pixels(_no_steady_lamps("turn_left"), side=+1)).any()


def test_keep_straight_shows_no_blinking() -> None:
    spec = _no_steady_lamps("keep_straight")
    assert not _amber(_lamp_pixels(spec, -1)).any() and not _amber(_lamp_pixels(spec, +1)).any()


def _late_travel(action: str) -> float:
    options = WorldOptions(width=160, height=160, seconds=4.0)
    path = layout(sample_clip(5, 3, options).replace(early_action=action)).agent
    late = slice(int(0.6 * options.frames), None)
    return float(np.hypot(np.diff(path.x[late]), np.diff(path.y[late])).sum())


def test_stop_moves_less_late_in_the_clip_than_keep_straight() -> None:
    assert _late_travel("stop") < 0.05 * _late_travel("keep_straight")


def test_braking_is_the_only_early_difference_between_stop_and_keep_straight() -> None:
    options = WorldOptions(seconds=4.0)
    base = sample_clip(5, 3, options)
    stop, straight = (layout(base.replace(early_action=a)).agent for a in ("stop", "keep_straight"))
    early = slice(0, int(0.1 * options.frames))
    step = lambda p: np.hypot(np.diff(p.x[early]), np.diff(p.y[early]))
    assert np.allclose(step(straight), step(straight)[0])  # constant speed
    assert step(stop)[-1] < 0.7 * step(stop)[0]  # slowing down already in the first 10 %
    assert (stop.x[0], stop.y[0]) == pytest.approx((straight.x[0], straight.y[0]))


def _brake_pixels(spec: ClipSpec) -> np.ndarray:
    """RGB at the centre of the car's left brake lamp in each frame of the early window."""
    window = int(0.1 * spec.options.frames)
    path = layout(spec).agent
    frames = render_clip(spec, frames=window)
    s = spec.options.scale
    heading, x, y = path.heading[:window], path.x[:window], path.y[:window]
    ux, uy = np.cos(heading), np.sin(heading)
    bx = np.round(x + BRAKE_ALONG * s * ux + BRAKE_SIDE * s * uy - 0.5).astype(int)
    by = np.round(y + BRAKE_ALONG * s * uy - BRAKE_SIDE * s * ux - 0.5).astype(int)
    return frames[np.arange(window), by, bx].astype(int)


def _lit_brake(pixels: np.ndarray) -> np.ndarray:
    return np.all(np.abs(pixels - np.asarray(BRAKE_ON)) < 40, axis=-1)


@pytest.mark.parametrize("action", sorted(BRAKES))
def test_brake_lights_switch_on_inside_the_early_window_of_a_braking_car(action: str) -> None:
    spec = sample_clip(5, 3, WorldOptions(seconds=4.0)).replace(early_action=action, quality="excellent",
                                                                 visual_evidence=False)
    lit = _lit_brake(_brake_pixels(spec))
    assert not lit[0] and lit[-1], lit
    assert list(lit) == sorted(lit)  # off, then on: one switch


def test_brake_lights_of_a_car_that_does_not_brake_never_switch() -> None:
    options = WorldOptions(seconds=4.0)
    for index in range(6):
        spec = sample_clip(5, index, options).replace(early_action="keep_straight", quality="excellent",
                                                      visual_evidence=False)
        lit = _lit_brake(_brake_pixels(spec))
        assert lit.all() or not lit.any()


def test_lane_change_drifts_sideways_in_the_early_window_and_keep_straight_does_not() -> None:
    options = WorldOptions(seconds=4.0)
    base = sample_clip(5, 3, options)
    window = int(0.1 * options.frames)

    def sideways(action: str) -> float:
        path = layout(base.replace(early_action=action)).agent
        heading = path.heading[0]
        dx, dy = path.x[window] - path.x[0], path.y[window] - path.y[0]
        return abs(-dx * np.sin(heading) + dy * np.cos(heading))  # displacement across the direction of travel

    assert sideways("lane_change") > 5 * options.scale
    assert sideways("keep_straight") < 0.5 * options.scale
