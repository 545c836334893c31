"""NVDEC decoder without a usable GPU: per-video fallback to PyAV, identical frames, reason recorded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from gpu_helpers import POLICY

from stream_tagger.decode import DecodeLimits, make_decoder, nvdec
from stream_tagger.engines.runtime import tensorrt_available
from stream_tagger.errors import DecodeFailed

needs_no_gpu = pytest.mark.skipif(tensorrt_available(), reason="this machine has a GPU: NVDEC would be used")


@needs_no_gpu
def test_falls_back_to_pyav_and_says_why(tiny_video):
    # Given
    decoder = make_decoder("nvdec")
    # When
    clip = decoder.decode(str(tiny_video), [POLICY])
    # Then the clip is PyAV's, with the reason, and NVDEC is off for the following videos
    assert clip.backend == "pyav"
    assert nvdec.FALLBACK_NOTE in clip.notes
    assert decoder.disabled_reason is not None
    reference = make_decoder("pyav").decode(str(tiny_video), [POLICY])
    np.testing.assert_array_equal(clip.frames[POLICY], reference.frames[POLICY])
    assert clip.frames[POLICY].shape == (8, 64, 64, 3) and clip.frames[POLICY].dtype == np.uint8


@needs_no_gpu
def test_file_like_source_is_rewound_for_the_fallback(tiny_video):
    clip = make_decoder("nvdec").decode(io.BytesIO(tiny_video.read_bytes()), [POLICY])
    assert clip.backend == "pyav"
    assert clip.frames[POLICY].shape == (8, 64, 64, 3)


def test_an_unreadable_file_is_a_decode_error_not_a_device_problem(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    decoder = make_decoder("nvdec")
    with pytest.raises(DecodeFailed):
        decoder.decode(str(junk), [POLICY])
    assert decoder.disabled_reason is None  # the file was bad, the GPU was never proven broken


def test_unsupported_codec_falls_back_for_that_video_only(tiny_video, monkeypatch):
    # Given a hardware decoder that reports the codec as not NVDEC-decodable
    def refuse(self, source):
        raise nvdec.HardwareUnavailable("codec av1 has no NVDEC config", device_problem=False)

    monkeypatch.setattr(nvdec._HardwareDecoder, "_open", refuse)
    decoder = nvdec.NvdecDecoder(DecodeLimits())
    # When
    clip = decoder.decode(str(tiny_video), [POLICY])
    # Then that video used PyAV but NVDEC stays on for the next one
    assert clip.backend == "pyav"
    assert "av1" in clip.notes[nvdec.FALLBACK_NOTE]
    assert decoder.disabled_reason is None


def test_a_non_seekable_stream_cannot_be_retried():
    class Pipe(io.RawIOBase):
        def seekable(self) -> bool:
            return False

    with pytest.raises(DecodeFailed, match="non-seekable"):
        nvdec._rewind(Pipe())
