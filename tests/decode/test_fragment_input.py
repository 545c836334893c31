"""The fragments input: native-resolution patches cut from the decoded planes, centred when serving."""

from __future__ import annotations

import av
import numpy as np
import pytest
from pydantic import ValidationError

from stream_tagger.decode import make_decoder
from stream_tagger.decode.fragments import cell_bounds, cut_fragments, patch_origins
from stream_tagger.engines.manifest import FragmentsFeed
from stream_tagger.sampling import FragmentPolicy, SamplingPolicy

POLICY = FragmentPolicy(frames=4, grid=7, patch=32, seconds=1.0, max_seconds=2.0)


def _reference_mosaic(rgb: np.ndarray, top: np.ndarray, left: np.ndarray, patch: int) -> np.ndarray:
    """The mosaic cut the slow, obvious way from a full-frame RGB conversion."""
    grid = top.shape[0]
    out = np.zeros((grid * patch, grid * patch, 3), np.uint8)
    for i in range(grid):
        for j in range(grid):
            out[i * patch:(i + 1) * patch, j * patch:(j + 1) * patch] = \
                rgb[top[i, j]:top[i, j] + patch, left[i, j]:left[i, j] + patch]
    return out


def _frame(width: int, height: int, fmt: str, seed: int = 0) -> av.VideoFrame:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=fmt)


@pytest.mark.parametrize("width,height", [(1920, 1080), (640, 360), (100, 60)])
@pytest.mark.parametrize("fmt", ["yuv420p", "nv12"])  # what PyAV and NVDEC (downloaded) decode to
def test_mosaic_holds_the_native_pixels_at_the_cell_centres(width, height, fmt):
    # Given a decoded-like frame of noise (every pixel differs from its neighbours)
    frame = _frame(width, height, "yuv420p")

    # When it is cut into fragments (from NV12, the same samples interleaved)
    mosaic = cut_fragments(frame.reformat(format=fmt), POLICY)

    # Then each patch is exactly the frame's own pixels at its cell's centre, as a full conversion gives them
    top, left = patch_origins(POLICY, width, height)
    full = frame.reformat(format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()
    assert mosaic.shape == (224, 224, 3) and mosaic.dtype == np.uint8
    np.testing.assert_array_equal(mosaic, _reference_mosaic(full, top[0], left[0], 32))
    rows, cols = cell_bounds(height, 7, 32), cell_bounds(width, 7, 32)
    assert np.all(np.abs(top[0][:, 0] - (rows[0] + rows[1]) // 2) <= 1)
    assert np.all(np.abs(left[0][0] - (cols[0] + cols[1]) // 2) <= 1)


def test_other_pixel_formats_and_tiny_frames_take_the_same_path():
    # Given smooth colour ramps (chroma survives a round trip through other formats)
    y, x = np.mgrid[0:360, 0:640]
    ramps = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(ramps, format="rgb24").reformat(format="yuv420p")
    expected = cut_fragments(frame, POLICY).astype(int)

    # Then 10-bit, 4:4:4 and RGB frames give (nearly) the same mosaic, and tiny frames a full one
    np.testing.assert_array_equal(cut_fragments(frame.reformat(format="yuv420p10le"), POLICY), expected)
    for fmt in ("yuv444p", "rgb24"):
        assert np.abs(cut_fragments(frame.reformat(format=fmt), POLICY).astype(int) - expected).mean() < 2
    assert cut_fragments(_frame(20, 30, "yuv420p"), POLICY).shape == (224, 224, 3)  # smaller than a patch


def test_random_offsets_stay_inside_their_cells_and_follow_the_seed():
    training = POLICY.training(draws=5, seed=3)
    top, left = patch_origins(training, 1280, 720)
    rows, cols = cell_bounds(720, 7, 32), cell_bounds(1280, 7, 32)
    assert top.shape == left.shape == (5, 7, 7)
    assert np.all((top >= rows[0][None, :, None] - 1) & (top <= rows[1][None, :, None]))
    assert np.all((left >= cols[0][None, None, :] - 1) & (left <= cols[1][None, None, :]))
    assert np.all(top % 2 == 0) and np.all(left % 2 == 0)
    again, _ = patch_origins(training, 1280, 720)
    other, _ = patch_origins(POLICY.training(draws=5, seed=4), 1280, 720)
    assert np.array_equal(top, again) and not np.array_equal(top, other)
    assert len({tuple(t.ravel()) for t in top}) == 5  # the draws differ from each other


def _pattern_clip(path, width: int, height: int, frames: int = 30, fps: int = 25) -> None:
    """A fine 2-px checkerboard (the scale of compression artefacts) that moves one pixel a frame."""
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(frames):
            image = np.where(((x + k) // 2 + y // 2) % 2 == 0, 40, 215).astype(np.uint8)
            image = np.repeat(image[..., None], 3, axis=2)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_decoder_serves_fragments_that_keep_what_resizing_erases(tmp_path):
    # Given a 640x360 clip of a fine checkerboard
    clip = tmp_path / "checker.mp4"
    _pattern_clip(clip, 640, 360)
    resized = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)

    # When one decode serves both the resized frames and the fragments
    decoded = make_decoder("pyav").decode(str(clip), [resized, POLICY])

    # Then the fragments hold the pattern's own two levels, pixel for pixel; the 64 px frames blend them
    fragments, frames = decoded.frames[POLICY], decoded.frames[resized]
    assert fragments.shape == (4, 224, 224, 3) and frames.shape == (8, 64, 64, 3)

    def share_of_pattern_levels(pixels: np.ndarray) -> float:
        return float(np.mean((np.abs(pixels.astype(int) - 40) <= 4) | (np.abs(pixels.astype(int) - 215) <= 4)))

    assert share_of_pattern_levels(fragments) > 0.99 and share_of_pattern_levels(frames) < 0.6
    # and every frame is cut at the same places: the pattern moved by one pixel between kept frames
    assert not np.array_equal(fragments[0], fragments[1])


def test_training_view_decodes_several_draws_per_frame(tmp_path):
    clip = tmp_path / "checker.mp4"
    _pattern_clip(clip, 640, 360)
    training = POLICY.training(draws=3, seed=1)
    fragments = make_decoder("pyav").decode(str(clip), [training]).frames[training]
    assert fragments.shape == (4, 3, 224, 224, 3)


def test_manifest_feed_serves_centred_fragments_only():
    feed = FragmentsFeed(fragments=POLICY)
    assert FragmentsFeed.model_validate_json(feed.model_dump_json()) == feed
    with pytest.raises(ValidationError):
        FragmentsFeed(fragments=POLICY.training(draws=2, seed=1))
    with pytest.raises(ValidationError):
        FragmentPolicy(frames=4, grid=7, patch=31, seconds=1.0)  # odd patches would split chroma samples
    assert POLICY.training(draws=2, seed=1).serving() == POLICY
