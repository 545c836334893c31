"""Memory bank (worker side, no torch): clustering, reference choice, vote, online update, atomic versions."""


import numpy as np
import pytest

from stream_tagger.engines.manifest import MEMORY_NAME, MODEL_NAME, EngineManifest
from stream_tagger.engines.memory_bank import MemoryBank, kmeans, select_references, vote
from stream_tagger.engines.repository import NotLatest
from stream_tagger.engines.tiny import write_tiny_engine


def blobs(centres, per=30, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([c + spread * rng.standard_normal((per, len(c))) for c in np.asarray(centres, float)])


def test_kmeans_finds_separated_blobs():
    points = blobs([[0, 0], [5, 5], [-5, 5]])
    centres, assignment = kmeans(points, 3)
    assert sorted(np.round(centres).tolist()) == sorted([[0, 0], [5, 5], [-5, 5]])
    assert len(set(assignment[:30])) == 1 and len(set(assignment)) == 3


def test_reference_is_the_member_nearest_the_centre():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.4, 0.1], [2.0, 0.0]])  # centre (0.85, 0.025)
    ref = select_references(points, k=1, rule="nearest_center")
    assert ref.tolist() == [[1.0, 0.0]]
    assert np.allclose(select_references(points, k=1, rule="centroid"), [[0.85, 0.025]])
    with pytest.raises(ValueError):
        select_references(points, 1, rule="median")


def test_each_frame_votes_for_its_nearest_reference_and_majority_wins():
    refs = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    labels = np.array([0, 1, 2])
    frames = np.array([[[9, 1], [11, 0], [1, 1], [10, 2]]], np.float32)  # 3 near class 1, 1 near class 0
    votes, shares = vote(frames, refs, labels, classes=3)
    assert votes.tolist() == [[1, 1, 0, 1]]
    assert shares.tolist() == [[0.25, 0.75, 0.0]]


def test_cosine_distance_ignores_length():
    refs = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    votes, _ = vote(np.array([[[100.0, 1.0]]], np.float32), refs * [[0.01], [1.0]], np.array([0, 1]), 2, "cosine")
    assert votes.tolist() == [[0]]


def make_version(tmp_path):
    """A published tiny early_action version whose bank is two blobs per class in 4-d."""
    version = write_tiny_engine(tmp_path, "early_action")
    classes = EngineManifest.load(version).labels["early_action"]
    centres = [[10.0 * k, 0, 0, 0] for k in range(len(classes))]
    features = blobs(centres, per=10)
    bank = MemoryBank.build(features, np.repeat(np.arange(len(classes)), 10), classes, clusters_per_class=2)
    bank.source_dir = version
    return bank, version


def test_add_reclusters_lazily_and_publish_makes_a_new_complete_version(tmp_path):
    # Given a bank loaded beside a served version
    bank, version = make_version(tmp_path)
    before = bank.feeds()
    assert set(before["memory_labels"].tolist()) == set(range(6))
    # When a confirmed clip of a far-away "turn_left" style is added
    bank.add(np.full((8, 4), [0.0, 0.0, 0.0, 99.0], np.float32), "turn_left")
    assert bank.dirty
    feeds = bank.feeds()
    assert not bank.dirty and len(bank.labels) == 68
    assert any(np.allclose(ref, [0, 0, 0, 99]) for ref in feeds["memory_refs"][feeds["memory_labels"] == 1])
    new_dir = bank.publish(tmp_path)
    # Then version 2 exists with the same model, a manifest with matching hashes, and the new bank
    assert new_dir.name == "2"
    assert (new_dir / MODEL_NAME).read_bytes() == (version / MODEL_NAME).read_bytes()
    manifest = EngineManifest.load(new_dir)
    assert manifest.version == 2 and set(manifest.sha256) == {MODEL_NAME, MEMORY_NAME}
    reloaded = MemoryBank.load(new_dir)
    assert np.array_equal(reloaded.feeds()["memory_refs"], feeds["memory_refs"])
    assert len(MemoryBank.load(version).labels) != 68  # the old version is untouched
    assert not [p for p in version.parent.iterdir() if p.name.startswith(".staging")]


def test_unknown_label_is_rejected(tmp_path):
    bank, _ = make_version(tmp_path)
    with pytest.raises(ValueError):
        bank.add(np.zeros(4, np.float32), "moonwalk")


def test_a_bank_built_from_more_vectors_than_it_may_hold_keeps_the_newest_per_class():
    features = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.array([0] * 7 + [1] * 3)
    bank = MemoryBank.build(features, labels, ["a", "b"], clusters_per_class=2, max_per_class=4)
    assert bank.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert bank.features[:4].tolist() == features[3:7].tolist()


def test_a_confirmed_example_added_twice_is_stored_once(tmp_path):
    bank, _ = make_version(tmp_path)
    clip = np.full((8, 4), [0.0, 5.0, 0.0, 0.0], np.float32)
    assert bank.add(clip, "stop", key='["v-1", "stop"]') is True
    before = (bank.features.copy(), bank.labels.copy(), list(bank.example_keys))
    assert bank.add(clip + 1, "stop", key='["v-1", "stop"]') is False
    assert np.array_equal(bank.features, before[0]) and np.array_equal(bank.labels, before[1])
    assert bank.example_keys == before[2] and bank.contains('["v-1", "stop"]')


def test_eviction_is_first_in_first_out_by_whole_example_and_forgets_the_keys():
    # Given a class bounded at 10 vectors holding 4 seed vectors and one confirmed clip of 4 frames
    bank = MemoryBank.build(np.zeros((4, 2)), np.zeros(4, np.int64), ["a", "b"], clusters_per_class=2,
                            max_per_class=10)
    bank.add(np.ones((4, 2)), "a", key="first")
    # When a second clip of 4 frames pushes the class to 12 > 10
    bank.add(np.full((4, 2), 2.0), "a", key="second")
    # Then the two oldest rows (seed vectors) went, nothing of the clips
    assert len(bank.labels) == 10 and bank.features[:2].tolist() == [[0, 0], [0, 0]]
    # When a third clip needs 2 more rows out: the seed vectors go, then a part of "first", so all of it
    bank.add(np.full((4, 2), 3.0), "a", key="third")
    assert sorted(set(bank.features[:, 0].tolist())) == [2.0, 3.0] and len(bank.labels) == 8
    assert bank.example_keys == ["second", "third"] and not bank.contains("first")
    assert bank.row_example.tolist() == [0] * 4 + [1] * 4


def test_reclustering_is_batched_per_class_and_equals_a_full_recluster(tmp_path):
    bank, _ = make_version(tmp_path)
    refs_before = bank.feeds()
    bank.add(np.full((8, 4), [0.0, 0.0, 0.0, 99.0], np.float32), "turn_left", key="k1")
    bank.add(np.full((8, 4), [0.0, 0.0, 50.0, 0.0], np.float32), "turn_left", key="k2")
    assert bank._stale == {1}  # two adds, one class to re-cluster, nothing done yet
    partial = bank.feeds()
    untouched = refs_before["memory_labels"] != 1
    assert np.array_equal(partial["memory_refs"][partial["memory_labels"] != 1], refs_before["memory_refs"][untouched])
    full = MemoryBank.build(bank.features, bank.labels, bank.classes, clusters_per_class=2).feeds()
    assert np.array_equal(partial["memory_refs"], full["memory_refs"])
    assert np.array_equal(partial["memory_labels"], full["memory_labels"])


def test_keys_survive_save_and_load(tmp_path):
    bank, _ = make_version(tmp_path)
    bank.add(np.ones((8, 4), np.float32), "stop", key='["v-9", "stop"]')
    published = bank.publish(tmp_path)
    reloaded = MemoryBank.load(published)
    assert reloaded.contains('["v-9", "stop"]') and reloaded.row_example.tolist() == bank.row_example.tolist()
    assert reloaded.add(np.ones((8, 4), np.float32), "stop", key='["v-9", "stop"]') is False


def test_publish_if_latest_refuses_when_another_version_came_first(tmp_path):
    bank, version = make_version(tmp_path)
    other = MemoryBank.load(version)
    other.publish(tmp_path)  # version 2, by someone else
    bank.add(np.ones((8, 4), np.float32), "stop", key="late")
    with pytest.raises(NotLatest):
        bank.publish(tmp_path, if_latest=1)
    assert bank.publish(tmp_path, if_latest=2).name == "3"
