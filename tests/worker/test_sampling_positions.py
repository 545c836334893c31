"""Which frames an engine sees: target times per policy, and the frames the decoder keeps for them."""

from __future__ import annotations

import av
import numpy as np
import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy


def test_seconds_window_spreads_t_frames_uniformly():
    policy = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
    assert policy.target_times(20.0) == pytest.approx([i / 8 for i in range(8)])


def test_fraction_window_uses_the_duration_and_is_capped():
    policy = SamplingPolicy(frames=4, height=64, width=64, fraction=0.1, max_seconds=2.0)
    assert policy.target_times(8.0) == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert policy.target_times(7200.0)[-1] == pytest.approx(1.5)  # 10 % of 2 h capped at 2 s


def test_short_video_window_never_exceeds_its_duration():
    policy = SamplingPolicy(frames=4, height=64, width=64, seconds=1.0, max_seconds=2.0)
    assert policy.target_times(0.5) == pytest.approx([0.0, 0.125, 0.25, 0.375])


def _numbered_clip(path, frames: int, fps: int) -> None:
    """Frame k is uniformly grey at level 8*k, so the decoded pixel says which frame was kept."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv444p"
        for k in range(frames):
            image = np.full((64, 64, 3), 8 * k, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_decoder_keeps_the_frames_at_the_target_times(tmp_path):
    # Given a 10 fps clip whose frame k has grey level 8k
    clip = tmp_path / "numbered.mp4"
    _numbered_clip(clip, frames=30, fps=10)
    policy = SamplingPolicy(frames=4, height=32, width=32, seconds=2.0, max_seconds=2.0)

    # When the decoder samples 4 frames over the first 2 s (targets 0, .5, 1, 1.5 s)
    frames = make_decoder("pyav").decode(str(clip), [policy]).frames[policy]

    # Then it kept frames 0, 5, 10, 15
    levels = np.round(frames.reshape(4, -1).mean(axis=1) / 8).astype(int).tolist()
    assert frames.shape == (4, 32, 32, 3)
    assert levels == [0, 5, 10, 15]
