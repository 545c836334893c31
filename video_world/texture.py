"""Natural-image texture for upload-sized renders: noise with the 1/f amplitude spectrum of photographs.

Flat sprites on gradients cost an encoder nothing, so their compressed copies look pristine at any
bitrate. Photographs have detail at every scale, with an amplitude spectrum close to 1/f; a field
with that spectrum gives a rendered clip the same appetite for bits, so its measured quality
(video_world.measure) behaves like that of real footage along a rate ladder.
"""

from __future__ import annotations

import numpy as np


#: (spectral exponent range, contrast range in levels) of each texture kind. ``wide``: the measured
#: world as first rendered (beta from 1.0, fine grain, to 2.0, broad blotches; contrast 5-18).
#: ``photo``: the range photographs keep (beta 1.0-1.3, contrast 12-18). With ``wide``, a blurred
#: or compressed shallow-spectrum texture looks like a pristine steep-spectrum one, so no model
#: without the reference can tell their grades apart (docs/quality.md §5); ``photo`` keeps the
#: pristine look of every clip close to that of real footage.
TEXTURES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "wide": ((1.0, 2.0), (5.0, 18.0)),
    "photo": ((1.0, 1.3), (12.0, 18.0)),
}


def draw_texture(rng: np.random.Generator, height: int, width: int, kind: str = "wide") -> np.ndarray:
    """A texture of ``kind`` (see :data:`TEXTURES`), contrast and exponent drawn from ``rng``."""
    if kind not in TEXTURES:
        raise ValueError(f"unknown texture {kind!r}; expected one of {sorted(TEXTURES)}")
    betas, contrasts = TEXTURES[kind]
    contrast = rng.uniform(*contrasts)
    return natural_texture(rng, height, width, contrast, betas)


def natural_texture(rng: np.random.Generator, height: int, width: int, contrast: float,
                    betas: tuple[float, float] = TEXTURES["wide"][0]) -> np.ndarray:
    """float32 ``[height, width, 3]``, zero mean, standard deviation ``contrast`` (levels of 0..255).

    Two independent 1/f^beta fields give luminance and a colour shift, mixed into RGB by a random
    matrix; beta is drawn from ``betas``.
    """
    beta = rng.uniform(*betas)
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    amplitude = radius ** -beta
    amplitude[0, 0] = 0.0
    fields = []
    for _ in range(2):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape).astype(np.float32)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width)).astype(np.float32)
        fields.append(field / (field.std() + 1e-6))
    mix = np.array([[1.0, 1.0, 1.0], rng.uniform(-0.5, 0.5, 3)], np.float32)
    return (np.stack(fields, axis=-1) @ mix * np.float32(contrast)).astype(np.float32)
