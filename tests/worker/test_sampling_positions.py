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


def _numbered_clip(path, frames: int, fps: int, b_frames: int = 0) -> None:
    """Frame k is uniformly grey at level 8*k, so the decoded pixel says which frame was kept.

    ``b_frames``: that many non-reference B-frames between reference frames, always (x264 makes none
    when lossless, so such a clip is near-lossless instead; its grey levels still round to k).
    """
    options = {"qp": "0"}
    if b_frames:
        options = {"crf": "10", "x264-params": f"bframes={b_frames}:b-adapt=0:b-pyramid=none:scenecut=0"}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options=options)
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


def test_reference_decoding_skips_non_reference_frames_and_keeps_the_next_decoded_one(tmp_path):
    # Given a 10 fps clip with 2 non-reference B-frames between reference frames, frame k at grey 8k
    clip = tmp_path / "numbered.mp4"
    _numbered_clip(clip, frames=30, fps=10, b_frames=2)
    every = SamplingPolicy(frames=4, height=32, width=32, seconds=2.0, max_seconds=2.0)
    reference = every.model_copy(update={"decode": "reference"})

    # When it is sampled once decoding every frame and once decoding reference frames only
    decoder = make_decoder("pyav")
    all_clip, ref_clip = decoder.decode(str(clip), [every]), decoder.decode(str(clip), [reference])

    # Then fewer frames were decoded, and each target got the first decoded frame at or after it:
    # the same frame, or one a few frames later where the target fell on a skipped B-frame
    level = lambda frames: np.round(frames.reshape(4, -1).mean(axis=1) / 8).astype(int)
    assert ref_clip.frames_decoded < all_clip.frames_decoded
    assert level(all_clip.frames[every]).tolist() == [0, 5, 10, 15]
    moved = level(ref_clip.frames[reference]) - level(all_clip.frames[every])
    assert moved.min() >= 0 and moved.max() <= 2 and moved[0] == 0  # the first frame is a keyframe
    assert moved.max() > 0  # some target fell on a skipped frame


def test_policies_with_different_decode_settings_each_get_their_own_frames(tmp_path):
    # Given a clip with B-frames and two policies that differ only in what they let the decoder skip
    clip = tmp_path / "numbered.mp4"
    _numbered_clip(clip, frames=30, fps=10, b_frames=2)
    every = SamplingPolicy(frames=4, height=32, width=32, seconds=2.0, max_seconds=2.0)
    reference = every.model_copy(update={"decode": "reference"})
    decoder = make_decoder("pyav")

    # When both are asked for in one call
    both = decoder.decode(str(clip), [every, reference])

    # Then each policy's frames are exactly what it gets on its own (two passes, one per setting)
    for policy in (every, reference):
        alone = decoder.decode(str(clip), [policy])
        assert np.array_equal(both.frames[policy], alone.frames[policy])
    assert both.frames_decoded == sum(decoder.decode(str(clip), [p]).frames_decoded for p in (every, reference))


def test_a_policy_allowed_to_skip_deblocking_shares_the_pass_of_one_that_needs_it(tmp_path):
    # Given an upload-like (deblocked) clip, one policy that needs the filter and one merely allowed to skip it
    clip = tmp_path / "upload.mp4"
    _upload_like_clip(clip, "libx264")
    deblocked = SamplingPolicy(frames=4, height=32, width=32, seconds=2.0, max_seconds=2.0, decode="needed")
    permissive = SamplingPolicy(frames=3, height=32, width=32, seconds=2.0, max_seconds=2.0, decode="needed",
                                deblock=False)
    decoder = make_decoder("pyav")

    # When both are asked for in one call
    both = decoder.decode(str(clip), [deblocked, permissive])

    # Then one deblocked pass serves both: the permissive policy gets the deblocked pictures
    as_deblocked = permissive.model_copy(update={"deblock": True})
    alone = decoder.decode(str(clip), [deblocked, as_deblocked])
    assert np.array_equal(both.frames[permissive], alone.frames[as_deblocked])
    assert not np.array_equal(both.frames[permissive], decoder.decode(str(clip), [permissive]).frames[permissive])
    assert both.frames_decoded == alone.frames_decoded


def _upload_like_clip(path, codec: str) -> None:
    """3 s of moving noise at 30 fps, encoded as uploads are: B-frames (pyramid ones too), deblocking."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (64, 160, 3), dtype=np.uint8)
    options = {"libx264": {"preset": "medium", "crf": "28"},
               "libx265": {"preset": "medium", "crf": "30", "x265-params": "log-level=none"}}[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for k in range(90):
            image = np.ascontiguousarray(base[:, k : k + 64])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
@pytest.mark.parametrize(
    "window", [{"seconds": 1.0}, {"seconds": 2.7}, {"fraction": 0.5}, {"seconds": 5.0}], ids=str
)
def test_needed_decoding_keeps_the_pictures_of_decoding_every_frame_from_fewer_decoded_frames(tmp_path, codec, window):
    # Given an upload-like clip (B-frames) and policies whose targets fall on all kinds of frames
    clip = tmp_path / "upload.mp4"
    _upload_like_clip(clip, codec)
    every = [SamplingPolicy(frames=frames, height=32, width=32, max_seconds=6.0, **window) for frames in (8, 5)]
    needed = [p.model_copy(update={"decode": "needed"}) for p in every]
    decoder = make_decoder("pyav")

    # When it is sampled decoding every frame, and decoding only the frames needed
    all_clip, needed_clip = decoder.decode(str(clip), every), decoder.decode(str(clip), needed)

    # Then every policy got exactly the same pictures, and fewer frames were decoded for them
    for p, q in zip(every, needed):
        assert np.array_equal(all_clip.frames[p], needed_clip.frames[q])
    assert needed_clip.frames_decoded < all_clip.frames_decoded
    assert needed_clip.seconds_covered == all_clip.seconds_covered


def test_needed_decoding_of_a_stream_without_b_frames_is_decoding_every_frame(tmp_path):
    clip = tmp_path / "numbered.mp4"
    _numbered_clip(clip, frames=30, fps=10)
    every = SamplingPolicy(frames=4, height=32, width=32, seconds=2.0, max_seconds=2.0)
    needed = every.model_copy(update={"decode": "needed"})
    decoder = make_decoder("pyav")
    all_clip, needed_clip = decoder.decode(str(clip), [every]), decoder.decode(str(clip), [needed])
    assert np.array_equal(all_clip.frames[every], needed_clip.frames[needed])
    assert needed_clip.frames_decoded == all_clip.frames_decoded  # nothing to skip: every frame is a reference


def test_needed_and_every_frame_policies_share_one_pass(tmp_path):
    # Given one engine served with decode=needed and one that still decodes every frame
    clip = tmp_path / "upload.mp4"
    _upload_like_clip(clip, "libx264")
    every = SamplingPolicy(frames=8, height=32, width=32, seconds=1.0, max_seconds=2.0)
    needed = SamplingPolicy(frames=4, height=48, width=48, seconds=1.0, max_seconds=2.0, decode="needed")
    decoder = make_decoder("pyav")

    # When both are asked for in one call
    both = decoder.decode(str(clip), [every, needed])

    # Then one pass decodes them (their pictures are the same kind), skipping what neither keeps
    assert np.array_equal(both.frames[every], decoder.decode(str(clip), [every]).frames[every])
    assert np.array_equal(both.frames[needed], decoder.decode(str(clip), [needed]).frames[needed])
    assert both.frames_decoded < decoder.decode(str(clip), [every]).frames_decoded


def test_a_policy_that_decodes_every_frame_serialises_as_before_the_setting_existed():
    every = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
    reference = every.model_copy(update={"decode": "reference"})
    assert "decode" not in every.model_dump_json()  # manifests and frame-cache keys unchanged
    assert SamplingPolicy.model_validate_json(reference.model_dump_json()) == reference
    assert reference != every and hash(reference) != hash(every)


def _textured_clip(path, deblocked: bool) -> None:
    """2 s of moving noise at 10 fps, lossy enough that H.264's deblocking filter changes pixels."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    options = {"crf": "35", "x264-params": "bframes=0" + ("" if deblocked else ":no-deblock=1")}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options=options)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for k in range(20):
            image = np.ascontiguousarray(base[:, k : k + 64])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_skipping_deblocking_changes_pixels_only_where_the_stream_is_deblocked(tmp_path):
    on = SamplingPolicy(frames=4, height=64, width=64, seconds=1.0, max_seconds=1.0)
    off = on.model_copy(update={"deblock": False})
    decoder = make_decoder("pyav")
    for deblocked in (True, False):
        clip = tmp_path / f"textured-{deblocked}.mp4"
        _textured_clip(clip, deblocked)
        with_filter, without = decoder.decode(str(clip), [on]), decoder.decode(str(clip), [off])
        # the same frames are decoded; their pixels differ only if the encoder deblocked, since
        # skipping a filter the stream does not use changes nothing
        assert with_filter.frames_decoded == without.frames_decoded
        differ = not np.array_equal(with_filter.frames[on], without.frames[off])
        assert differ == deblocked
