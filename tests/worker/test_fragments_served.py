"""An engine with a fragments input is served from its manifest alone: decoded once, fed, recorded."""

from __future__ import annotations

import numpy as np
import pytest

from stream_tagger.decode import make_decoder
from stream_tagger.engines.manifest import FragmentsFeed
from stream_tagger.engines.repository import EngineRepository, load_engine
from stream_tagger.engines.tiny import FRAGMENTS, write_tiny_engine, write_tiny_repository
from stream_tagger.records import InputEvent, StageTimes
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy
from stream_tagger.tagger import Tagger


@pytest.fixture(scope="module")
def fragments_engines(tmp_path_factory):
    """The three tiny engines, plus classifier/2 whose quality head reads a fragments input."""
    root = write_tiny_repository(tmp_path_factory.mktemp("engines"))
    write_tiny_engine(root, "classifier", version=2, fragments=FRAGMENTS)
    return root


def test_manifest_declares_the_fragments_feed_and_the_probe_builds_it(fragments_engines):
    engine = load_engine(fragments_engines / "classifier" / "2", "onnxruntime", threads=1)
    try:
        feeds = {spec.name: spec.feed for spec in engine.manifest.inputs}
        assert feeds["fragments"] == FragmentsFeed(fragments=FRAGMENTS)
        assert FRAGMENTS in engine.sampling_policies
        assert engine.inputs.probe_feeds()["fragments"].shape == (2, 2, 64, 64, 3)
        engine.probe()
        # the quality output really reads the fragments: other fragments, other grades
        frames = {p: np.zeros((1, p.frames, p.height, p.width, 3), np.uint8) for p in engine.sampling_policies}
        dark = engine.infer(frames, ["t"])["quality_probs"]
        frames[FRAGMENTS] = np.full_like(frames[FRAGMENTS], 255)
        bright = engine.infer(frames, ["t"])["quality_probs"]
        assert not np.allclose(dark, bright)
    finally:
        engine.close()


def test_worker_decodes_fragments_once_and_records_quality_as_before(fragments_engines, clip_dir,
                                                                     validate_tag_record):
    # Given the tagger serving the fragments classifier
    repository = EngineRepository(fragments_engines, "onnxruntime", threads=1)
    repository.load()
    uri_policy = UriPolicy((clip_dir.resolve(),), frozenset(), 10**8, 5.0)
    tagger = Tagger(repository, make_decoder("pyav"), uri_policy, RetryPolicy(1, 0.0, 0.0), "worker-test-0")
    try:
        # When an event is decoded and tagged
        event = InputEvent(video_id="v", uri=(clip_dir / "synth-000.mp4").as_uri(), title="a title")
        prepared = tagger.prepare(event, None, StageTimes())
        (record,) = tagger.infer([prepared])

        # Then one decode gave the fragments beside the frames, and the record keeps its quality shape
        assert FRAGMENTS in tagger.policies and prepared.clip.frames[FRAGMENTS].shape == (2, 64, 64, 3)
        validate_tag_record(record)
        assert record["engines"]["classifier"].startswith("classifier/2@")
        assert set(record["quality"]) == {"label", "score"} and 0.0 <= record["quality"]["score"] <= 1.0
    finally:
        tagger.close()
