"""The memory-network document's bank rules: threshold clustering, reference rules, random-subset matching."""

import numpy as np
import pytest

from stream_tagger.engines.memory_bank import (
    MemoryBank,
    class_spread,
    random_subset,
    select_references,
    threshold_clusters,
)


def test_a_point_beyond_the_threshold_from_every_centre_opens_a_cluster():
    points = np.array([[0.0, 0], [0.5, 0], [10, 0], [10.4, 0], [0, 20]])
    centres, assignment = threshold_clusters(points, threshold=1.0)
    assert len(centres) == 3
    assert assignment[0] == assignment[1] and assignment[2] == assignment[3] and len(set(assignment)) == 3
    # a threshold wider than every gap makes one cluster, a tighter one a cluster per point
    assert len(threshold_clusters(points, threshold=30.0)[0]) == 1
    assert len(threshold_clusters(points, threshold=0.1)[0]) == 5


def test_threshold_is_relative_to_the_class_spread():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (40, 3)), rng.normal(5, 0.1, (40, 3))])
    refs = select_references(points, k=99, clustering="threshold", threshold=0.5)
    scaled = select_references(points * 1000, k=99, clustering="threshold", threshold=0.5)
    assert len(refs) == len(scaled) == 2  # the two blobs, whatever the feature scale
    assert class_spread(points * 1000) == pytest.approx(1000 * class_spread(points))


def test_max_clusters_keeps_the_most_populated():
    points = np.array([[0.0], [0.1], [0.2], [10.0], [20.0]])
    centres, assignment = threshold_clusters(points, threshold=1.0, max_clusters=1)
    assert len(centres) == 1 and centres[0][0] == pytest.approx(0.1) and set(assignment) == {0}


def test_reference_rules_nearest_farthest_random():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.4, 0.1], [2.0, 0.0]])  # centre (0.85, 0.025)
    assert select_references(points, 1, "nearest_center").tolist() == [[1.0, 0.0]]
    assert select_references(points, 1, "farthest").tolist() == [[2.0, 0.0]]
    picks = {tuple(select_references(points, 1, "random", seed=s)[0]) for s in range(20)}
    assert picks <= {tuple(p) for p in points.astype(np.float32)} and len(picks) > 1  # a member, not always one
    assert np.array_equal(select_references(points, 1, "random", seed=3), select_references(points, 1, "random", seed=3))


def test_random_subset_matching_uses_that_many_stored_vectors_per_class():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((100, 4)).astype(np.float32)
    labels = np.repeat([0, 1], 50)
    bank = MemoryBank.build(features, labels, ["a", "b"], matching="random_subset", subset_size=7)
    feeds = bank.feeds()
    assert np.bincount(feeds["memory_labels"]).tolist() == [7, 7]
    stored = {tuple(v) for v in features}
    assert all(tuple(ref) in stored for ref in feeds["memory_refs"])
    assert {tuple(v) for v in feeds["memory_refs"][feeds["memory_labels"] == 1]} <= {tuple(v) for v in features[50:]}
    assert len(random_subset(features[:3], 7)) == 3


def test_the_bank_keeps_its_clustering_through_save_and_load(tmp_path):
    rng = np.random.default_rng(1)
    features = np.concatenate([rng.normal(c, 0.05, (20, 2)) for c in (0, 3, 6, 9)]).astype(np.float32)
    bank = MemoryBank.build(features, np.repeat([0, 0, 1, 1], 20), ["a", "b"], clustering="threshold",
                            cluster_threshold=0.5, rule="farthest")
    assert np.bincount(bank.feeds()["memory_labels"]).tolist() == [2, 2]  # two blobs per class
    bank.save(tmp_path / "memory.npz")
    loaded = MemoryBank.load(tmp_path / "memory.npz")
    assert (loaded.clustering, loaded.cluster_threshold, loaded.rule) == ("threshold", 0.5, "farthest")
    # re-clustering the loaded bank's vectors gives exactly the saved references
    loaded._stale = {0, 1}
    assert np.array_equal(loaded.feeds()["memory_refs"], bank.feeds()["memory_refs"])


def test_unknown_bank_rules_are_refused():
    with pytest.raises(ValueError):
        MemoryBank.build(np.zeros((2, 2)), np.array([0, 0]), ["a"], clustering="dbscan")
    with pytest.raises(ValueError):
        MemoryBank.build(np.zeros((2, 2)), np.array([0, 0]), ["a"], matching="all")
