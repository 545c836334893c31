"""The texture kinds under measured-quality renders: the old draws unchanged, the photo range as declared."""

import numpy as np
import pytest

from video_world.texture import TEXTURES, draw_texture, natural_texture


def spectral_exponent(field: np.ndarray) -> float:
    """beta of a 1/f^beta amplitude spectrum, by a least-squares line through log power against log radius."""
    power = np.abs(np.fft.rfft2(field - field.mean())) ** 2
    fy = np.fft.fftfreq(field.shape[0])[:, None]
    fx = np.fft.rfftfreq(field.shape[1])[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    band = (radius > 0.02) & (radius < 0.4)
    slope = np.polyfit(np.log(radius[band]), np.log(power[band]), 1)[0]
    return -slope / 2


def test_the_wide_texture_draws_what_the_first_measured_world_drew():
    old_rng, new_rng = np.random.default_rng(3), np.random.default_rng(3)
    old = natural_texture(old_rng, 64, 96, old_rng.uniform(5.0, 18.0))
    np.testing.assert_array_equal(draw_texture(new_rng, 64, 96, "wide"), old)


def test_photo_textures_keep_the_photographs_spectrum_and_contrast():
    (low, high), (dim, bright) = TEXTURES["photo"].betas, TEXTURES["photo"].contrasts
    for seed in range(6):
        texture = draw_texture(np.random.default_rng(seed), 256, 256, "photo")
        assert low - 0.1 < spectral_exponent(texture[..., 0] + texture[..., 1] + texture[..., 2]) < high + 0.1
        assert dim * 0.95 < texture[..., 0].std() < bright * 1.15  # luminance plus up to half a colour field


def test_photo_textures_have_flat_and_detailed_regions():
    texture = draw_texture(np.random.default_rng(4), 256, 256, "photo")[..., 0]
    local = texture.reshape(8, 32, 8, 32).std(axis=(1, 3))  # contrast of each 32 px block
    assert np.percentile(local, 90) > 2.5 * np.percentile(local, 10)
    wide = draw_texture(np.random.default_rng(4), 256, 256, "wide")[..., 0].reshape(8, 32, 8, 32).std(axis=(1, 3))
    assert np.percentile(wide, 90) < 2.0 * np.percentile(wide, 10)


def test_an_unknown_texture_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown texture 'velvet'"):
        draw_texture(np.random.default_rng(0), 8, 8, "velvet")
