"""Natural-image texture for upload-sized renders: noise with the 1/f amplitude spectrum of photographs.

Flat sprites on gradients cost an encoder nothing, so their compressed copies look pristine at any
bitrate. Photographs have detail at every scale, with an amplitude spectrum close to 1/f; a field
with that spectrum gives a rendered clip the same appetite for bits, so its measured quality
(video_world.measure) behaves like that of real footage along a rate ladder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextureKind:
    betas: tuple[float, float]  # spectral exponent range
    contrasts: tuple[float, float]  # standard deviation range, levels of 0..255
    #: Standard deviation of the log of a smooth contrast map (0: the same contrast everywhere).
    #: Photographs mix flat regions (sky, skin) with detailed ones; without it a flat patch only ever
    #: means a blurred or starved one, and a model grades a pristine photograph's sky as damage.
    patchiness: float = 0.0


#: ``wide``: the measured world as first rendered (beta from 1.0, fine grain, to 2.0, broad blotches;
#: contrast 5-18, uniform). With it a blurred or compressed shallow-spectrum texture looks like a
#: pristine steep-spectrum one, so no model without the reference can tell their grades apart
#: (docs/quality.md §5). ``photo``: the range photographs keep (beta 1.0-1.3, contrast 12-18), with
#: flat and detailed regions side by side (local contrast about a third to three times the mean).
TEXTURES: dict[str, TextureKind] = {
    "wide": TextureKind((1.0, 2.0), (5.0, 18.0)),
    "photo": TextureKind((1.0, 1.3), (12.0, 18.0), patchiness=0.7),
    #: The control of docs/quality.md §5: ``photo`` with one spectrum and one contrast, so that content
    #: varies only by the contrast map, the layout and the pan.
    "photo_fixed": TextureKind((1.15, 1.15), (15.0, 15.0), patchiness=0.7),
}
#: Spectral exponent of the contrast map: broad regions, a few per frame.
CONTRAST_MAP_BETA = 3.0


def draw_texture(rng: np.random.Generator, height: int, width: int, kind: str = "wide") -> np.ndarray:
    """A texture of ``kind`` (see :data:`TEXTURES`), contrast and exponent drawn from ``rng``."""
    if kind not in TEXTURES:
        raise ValueError(f"unknown texture {kind!r}; expected one of {sorted(TEXTURES)}")
    texture_kind = TEXTURES[kind]
    contrast = rng.uniform(*texture_kind.contrasts)
    texture = natural_texture(rng, height, width, contrast, texture_kind.betas)
    if texture_kind.patchiness:
        local = np.exp(texture_kind.patchiness * _unit_field(rng, height, width, CONTRAST_MAP_BETA))
        texture = texture * local[..., None]
        texture *= np.float32(contrast) / (texture[..., 0].std() + 1e-6)
    return texture.astype(np.float32)


def natural_texture(rng: np.random.Generator, height: int, width: int, contrast: float,
                    betas: tuple[float, float] = TEXTURES["wide"].betas) -> np.ndarray:
    """float32 ``[height, width, 3]``, zero mean, standard deviation ``contrast`` (levels of 0..255).

    Two independent 1/f^beta fields give luminance and a colour shift, mixed into RGB by a random
    matrix; beta is drawn from ``betas``.
    """
    beta = rng.uniform(*betas)
    fields = [_unit_field(rng, height, width, beta) for _ in range(2)]
    mix = np.array([[1.0, 1.0, 1.0], rng.uniform(-0.5, 0.5, 3)], np.float32)
    return (np.stack(fields, axis=-1) @ mix * np.float32(contrast)).astype(np.float32)


def _unit_field(rng: np.random.Generator, height: int, width: int, beta: float) -> np.ndarray:
    """A zero-mean, unit-deviation field with a 1/f^beta amplitude spectrum."""
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    amplitude = radius ** -beta
    amplitude[0, 0] = 0.0
    phase = rng.uniform(0, 2 * np.pi, amplitude.shape).astype(np.float32)
    field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width)).astype(np.float32)
    return field / (field.std() + 1e-6)
