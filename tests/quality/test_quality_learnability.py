"""The no-reference statistics of the learnability probe respond to what they claim to measure."""

import numpy as np

from trainer.quality.learnability import blockiness, cross_validated_accuracy, noise, repeated_frames, sharpness


def _texture(rng, size=128):
    from scipy import ndimage

    return ndimage.gaussian_filter(rng.normal(128, 40, (2, size, size)), (0, 1.5, 1.5)).astype(np.float32)


def test_blockiness_sees_an_8px_grid_and_nothing_on_plain_texture():
    rng = np.random.default_rng(0)
    smooth = _texture(rng)
    blocky = np.repeat(np.repeat(smooth[:, ::8, ::8], 8, axis=1), 8, axis=2)  # every 8x8 block flat
    assert 0.8 < blockiness(smooth) < 1.2
    assert blockiness(blocky) > 5


def test_noise_estimate_follows_the_added_noise():
    rng = np.random.default_rng(1)
    flat = np.full((2, 96, 96), 128, np.float32)
    assert noise(flat) < 0.01
    assert abs(noise(flat + rng.normal(0, 5, flat.shape).astype(np.float32)) - 5) < 0.5


def test_sharpness_drops_under_blur_and_repeats_are_counted():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    frames = _texture(rng)
    blurred = ndimage.gaussian_filter(frames, (0, 2, 2))
    assert sharpness(blurred) < 0.8 * sharpness(frames)
    assert repeated_frames(np.stack([frames[0], frames[0], frames[1]])) == 0.5
    assert repeated_frames(frames) == 0.0


def test_the_regression_separates_separable_grades_and_not_noise():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 400)
    informative = np.exp(labels[:, None] + rng.normal(0, 0.2, (400, 2)))
    assert cross_validated_accuracy(informative, labels, 4, seed=0) > 0.9
    assert cross_validated_accuracy(np.exp(rng.normal(0, 1, (400, 2))), labels, 4, seed=0) < 0.4


def test_mosaic_statistics_ignore_the_seams_between_patches():
    from trainer.quality.learnability import mosaic_statistics

    levels = np.random.default_rng(4).integers(0, 256, (2, 3, 3))  # each patch flat, neighbours far apart
    mosaic = np.repeat(np.repeat(levels, 16, axis=1), 16, axis=2)[..., None].repeat(3, axis=-1).astype(np.uint8)
    assert mosaic_statistics(mosaic, grid=3, patch=16)["noise"] < 1e-3
    grainy = np.clip(mosaic + np.random.default_rng(5).normal(0, 6, mosaic.shape), 0, 255).astype(np.uint8)
    assert mosaic_statistics(grainy, grid=3, patch=16)["noise"] > 2


def test_multiscale_statistics_see_fine_detail_go_and_a_grid_appear():
    from scipy import ndimage

    from trainer.quality.learnability import multiscale_statistics

    rng = np.random.default_rng(6)
    frames = _texture(rng, size=256)
    sharp, blurred = multiscale_statistics(frames), multiscale_statistics(ndimage.gaussian_filter(frames, (0, 2, 2)))
    blocky = multiscale_statistics(np.repeat(np.repeat(frames[:, ::8, ::8], 8, axis=1), 8, axis=2))
    assert len(sharp) == 22 and np.isfinite(sharp).all()
    # scale 0's mean log energy falls far more under blur than scale 3's
    assert sharp[0] - blurred[0] > 2 * (sharp[12] - blurred[12]) > 0
    assert blocky[17] > sharp[17] + 1  # the step across the 8-px grid
