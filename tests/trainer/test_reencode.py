"""``stream-tagger-train reencode``: the same labelled clips, encoded as uploads are, for adopt-decode."""

from __future__ import annotations

import json

import av
import numpy as np

from stream_tagger.decode import make_decoder
from stream_tagger.sampling import SamplingPolicy
from tests.trainer.conftest import run_cli
from trainer.datasets.format import Dataset


def test_the_copy_keeps_every_label_and_its_clips_have_b_frames_the_world_does_not(tmp_path, world_tiny):
    out = tmp_path / "upload"
    result = run_cli("reencode", "--data", str(world_tiny), "--out", str(out), "--jobs", "2")
    assert result.returncode == 0, result.stderr[-2000:]

    original, copy = Dataset.load(world_tiny), Dataset.load(out)
    assert [r.clip_id for r in copy.rows] == [r.clip_id for r in original.rows]
    for before, after in zip(original.rows, copy.rows):
        assert (after.category, after.tags, after.quality, after.early_action, after.title) == (
            before.category, before.tags, before.quality, before.early_action, before.title)
    with av.open(str(copy.path(copy.rows[0]))) as container:
        assert container.streams.video[0].codec_context.has_b_frames > 0  # x264 medium reorders frames
    # B-frames are what decode=needed skips: fewer frames decoded for the same pictures
    every = SamplingPolicy(frames=4, height=32, width=32, seconds=1.0, max_seconds=1.0)
    needed = every.model_copy(update={"decode": "needed"})
    decoder = make_decoder("pyav")
    a, b = decoder.decode(str(copy.path(copy.rows[0])), [every]), decoder.decode(str(copy.path(copy.rows[0])), [needed])
    assert np.array_equal(a.frames[every], b.frames[needed]) and b.frames_decoded < a.frames_decoded
    assert json.loads(result.stdout.strip().splitlines()[-1])["clips"] == len(original)


def test_an_existing_output_folder_is_refused_with_a_clear_error(tmp_path, world_tiny):
    out = tmp_path / "upload"
    out.mkdir()
    result = run_cli("reencode", "--data", str(world_tiny), "--out", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
