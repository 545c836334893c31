"""Natural-image texture for upload-sized renders: noise with the 1/f amplitude spectrum of photographs.

Flat sprites on gradients cost an encoder nothing, so their compressed copies look pristine at any
bitrate. Photographs have detail at every scale, with an amplitude spectrum close to 1/f; a field
with that spectrum gives a rendered clip the same appetite for bits, so its measured quality
(video_world.measure) behaves like that of real footage along a rate ladder.
"""

from __future__ import annotations

import numpy as np


def natural_texture(rng: np.random.Generator, height: int, width: int, contrast: float) -> np.ndarray:
    """float32 ``[height, width, 3]``, zero mean, standard deviation ``contrast`` (levels of 0..255).

    Two independent 1/f^beta fields give luminance and a colour shift, mixed into RGB by a random
    matrix; beta is drawn from 1.0 (fine grain, photographs' value) to 2.0 (broad blotches).
    """
    beta = rng.uniform(1.0, 2.0)
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
