"""The accuracy guard on hand-made features, and the evaluation set's two formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.errors import ConfigError
from stream_tagger.feedback.features import load_eval_set
from stream_tagger.feedback.guard import AccuracyGuard

CLASSES = ["a", "b", "c"]
CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)


def eval_clips(per_class: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), per_class)
    return (CENTRES[labels][:, None, :] + rng.normal(0, 0.5, (len(labels), 8, 2))).astype(np.float32), labels


def a_bank() -> MemoryBank:
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 16)
    return MemoryBank.build(
        CENTRES[labels] + rng.normal(0, 0.5, (48, 2)), labels, CLASSES, clusters_per_class=2, max_per_class=16
    )


def test_the_guard_accepts_a_bank_as_good_as_before_and_refuses_a_poisoned_one():
    features, labels = eval_clips()
    guard = AccuracyGuard(features, labels, CLASSES, "euclidean", margin=0.05, digest="sha256:x")
    bank = a_bank()
    published, per_class = guard.score(bank)
    assert published == 1.0 and per_class == {"a": 1.0, "b": 1.0, "c": 1.0}
    # Clips of "c" confirmed as "b", enough to replace b's whole bounded memory
    for _ in range(2):
        bank.add(CENTRES[2] + np.zeros((8, 2), np.float32), "b")
    verdict = guard.judge(bank, published, anchor=published)
    assert not verdict.accepted and verdict.accuracy < 0.95 and verdict.per_class["b"] == 0.0
    assert "refused" in verdict.describe()
    assert guard.judge(a_bank(), published, anchor=published).accepted


def test_the_anchor_stops_a_walk_down_one_margin_at_a_time():
    features, labels = eval_clips()
    guard = AccuracyGuard(features, labels, CLASSES, "euclidean", margin=0.1, digest="sha256:x")
    worse = a_bank()
    worse.add(CENTRES[2] + np.zeros((16, 2), np.float32), "b")  # b forgotten: 2/3 right
    accuracy, _ = guard.score(worse)
    assert guard.judge(worse, published=accuracy, anchor=accuracy).accepted  # same as the newest version
    assert not guard.judge(worse, published=accuracy, anchor=1.0).accepted  # but far below the anchor
    metrics = {"memory_update": {"guard": {"eval_set": "sha256:x", "anchor": 0.9}}}
    assert guard.anchor_of(metrics, published=0.5) == 0.9
    assert (
        guard.anchor_of({"memory_update": {"guard": {"eval_set": "sha256:other", "anchor": 0.9}}}, 0.5) == 0.5
    )


def test_an_eval_set_is_a_dataset_folder_or_a_jsonl_of_uri_and_label(tmp_path):
    (tmp_path / "manifest.jsonl").write_text(
        json.dumps({"clip_id": "c1", "file": "clips/c1.mp4", "early_action": "stop"})
        + "\n"
        + json.dumps({"clip_id": "c2", "file": "clips/c2.mp4", "category": "news"})
        + "\n"  # no early_action
    )
    folder = load_eval_set(tmp_path)
    assert folder.files == (tmp_path / "clips" / "c1.mp4",) and folder.labels == ("stop",)
    listing = tmp_path / "eval.jsonl"
    listing.write_text(json.dumps({"uri": "file:///data/x.mp4", "label": "u_turn"}) + "\n")
    assert load_eval_set(listing).files[0].as_posix() == "/data/x.mp4"
    assert folder.digest != load_eval_set(listing).digest


@pytest.mark.parametrize(
    "line", ['{"uri": "https://host/x.mp4", "label": "stop"}', '{"label": "stop"}', "[1]"]
)
def test_a_bad_eval_set_is_a_config_error(tmp_path, line):
    listing = tmp_path / "eval.jsonl"
    listing.write_text(line + "\n")
    with pytest.raises(ConfigError):
        load_eval_set(listing)
