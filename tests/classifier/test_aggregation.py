import numpy as np
import pytest
from pydantic import ValidationError

from stream_tagger.aggregation import AggregationRule, aggregate_tags

LABELS = ["ball", "sun", "pot", "notes"]
# 4 frames × 4 tags: "ball" in all frames, "sun" in 2, "pot" in 1, "notes" never above 0.5
FRAMES = np.array([[0.9, 0.8, 0.1, 0.4],
                   [0.9, 0.7, 0.1, 0.4],
                   [0.8, 0.2, 0.6, 0.4],
                   [0.9, 0.1, 0.1, 0.4]], dtype=np.float32)
POOLED = np.array([0.9, 0.8, 0.6, 0.45], dtype=np.float32)


def labels_of(rule: AggregationRule) -> list[str]:
    return [label for label, _ in aggregate_tags(FRAMES, POOLED, LABELS, rule)]


def test_pooled_threshold_keeps_tags_at_or_above_threshold():
    assert labels_of(AggregationRule(rule="pooled_threshold", threshold=0.6)) == ["ball", "sun", "pot"]
    assert labels_of(AggregationRule(rule="pooled_threshold", threshold=0.85)) == ["ball"]


def test_frame_count_needs_min_frames_above_frame_threshold():
    assert labels_of(AggregationRule(rule="frame_count", min_frames=2)) == ["ball", "sun"]
    assert labels_of(AggregationRule(rule="frame_count", min_frames=1)) == ["ball", "sun", "pot"]
    assert labels_of(AggregationRule(rule="frame_count", min_frames=2, frame_threshold=0.3)) == ["ball", "sun", "notes"]


def test_top_n_ranks_by_frame_count_and_skips_unseen_tags():
    assert labels_of(AggregationRule(rule="top_n", top_n=2)) == ["ball", "sun"]
    assert labels_of(AggregationRule(rule="top_n", top_n=4)) == ["ball", "sun", "pot"]  # notes: 0 frames


def test_scores_are_pooled_scores_sorted_descending():
    result = aggregate_tags(FRAMES, POOLED, LABELS, AggregationRule(rule="frame_count", min_frames=1))
    assert result == sorted(result, key=lambda pair: -pair[1])
    assert dict(result)["pot"] == pytest.approx(0.6)


def test_rule_rejects_unknown_names_and_fields():
    with pytest.raises(ValidationError):
        AggregationRule(rule="majority")
    with pytest.raises(ValidationError):
        AggregationRule(rule="top_n", colour="red")
