"""The early-action memory bank (no torch): references the ONNX graph votes against, updatable online.

The bank keeps every stored feature vector (``features``/``labels``) and the references derived from
them. Per class the vectors are clustered, by k-means (``clustering="kmeans"``, ``clusters_per_class``
clusters) or by a distance threshold (``"threshold"``: a point farther than the threshold from every
centre opens a new cluster; the memory-network document's claim 3, ¶64), and each cluster gives one
reference by ``rule`` (claim 4, ¶68): the member nearest the centre (default), a random member, the
member farthest from the centre, or the centre itself. ``matching="random_subset"`` replaces the
clusters by a random draw of ``subset_size`` stored vectors per class (¶59). The references are an
*input* of the ONNX graph, so a worker can add confirmed examples and publish a new engine version
without re-exporting the model.

Confirmed examples (a clip's frame vectors, added at once) carry a key, so adding one twice is a no-op.
Each class is bounded by ``max_per_class`` vectors; the eviction rule is first in, first out, by whole
example: the oldest rows of the class go first (the trained seed vectors are the oldest), and an
example that loses one row loses all of them, key included. Re-clustering is batched: ``add`` only
marks its class stale; ``feeds``/``save`` re-cluster the stale classes once, the others keep their
references (k-means is seeded per class, so this equals re-clustering everything).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream_tagger.engines.manifest import MEMORY_NAME, MODEL_NAME, EngineManifest
from stream_tagger.engines.repository import publish_version

REFERENCE_RULES = ("nearest_center", "random", "farthest", "centroid")
CLUSTERINGS = ("kmeans", "threshold")
MATCHINGS = ("references", "random_subset")
KMEANS_ITERATIONS = 25


def kmeans(points: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(centres [k', dim], assignment [n]) with k' = min(k, n); k-means++ seeding, deterministic."""
    points = np.asarray(points, dtype=np.float64)
    k = min(k, len(points))
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        nearest = _sq_distances(points, np.stack(centres)).min(axis=1)
        weights = nearest / nearest.sum() if nearest.sum() > 0 else None
        centres.append(points[rng.choice(len(points), p=weights)])
    centres_arr = np.stack(centres)
    for _ in range(KMEANS_ITERATIONS):
        assignment = _sq_distances(points, centres_arr).argmin(axis=1)
        for j in range(k):  # an emptied cluster keeps its old centre
            if np.any(assignment == j):
                centres_arr[j] = points[assignment == j].mean(axis=0)
    return centres_arr, _sq_distances(points, centres_arr).argmin(axis=1)


def threshold_clusters(points: np.ndarray, threshold: float, seed: int = 0,
                       max_clusters: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centres, assignment): a point farther than ``threshold`` (euclidean) from every centre opens a
    new cluster, a nearer one joins the nearest and moves its centre to the members' mean.

    Points are visited in a seeded random order (the result does not depend on the order vectors were
    stored in), then every point is assigned once more to its nearest final centre. ``max_clusters``
    keeps the most populated clusters (the graph's reference input stays bounded); the points of the
    dropped ones join their nearest kept centre.
    """
    points = np.asarray(points, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(points))
    centres = np.empty((0, points.shape[1]))
    counts: list[int] = []
    limit = threshold ** 2
    for index in order:
        point = points[index]
        if len(centres):
            nearest_sq = ((centres - point) ** 2).sum(axis=1)
            nearest = int(nearest_sq.argmin())
            if nearest_sq[nearest] <= limit:
                counts[nearest] += 1
                centres[nearest] += (point - centres[nearest]) / counts[nearest]
                continue
        centres = np.vstack([centres, point])
        counts.append(1)
    assignment = _sq_distances(points, centres).argmin(axis=1)
    if max_clusters is not None and len(centres) > max_clusters:
        populated = np.argsort(-np.bincount(assignment, minlength=len(centres)), kind="stable")[:max_clusters]
        centres = centres[np.sort(populated)]
        assignment = _sq_distances(points, centres).argmin(axis=1)
    return centres, assignment


def class_spread(points: np.ndarray) -> float:
    """Root-mean-square distance of ``points`` to their mean (the unit of the relative threshold)."""
    points = np.asarray(points, dtype=np.float64)
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean())) if len(points) else 0.0


def select_references(points: np.ndarray, k: int, rule: str = "nearest_center", seed: int = 0,
                      clustering: str = "kmeans", threshold: float = 1.0, max_clusters: int = 64) -> np.ndarray:
    """One reference per cluster of ``points`` (k-means with ``k`` clusters, or the distance threshold
    ``threshold`` × the class's spread, at most ``max_clusters``): its member nearest the centre, a
    random member, its member farthest from the centre, or the centre itself."""
    if rule not in REFERENCE_RULES:
        raise ValueError(f"unknown reference rule {rule!r}; use one of {REFERENCE_RULES}")
    if clustering not in CLUSTERINGS:
        raise ValueError(f"unknown clustering {clustering!r}; use one of {CLUSTERINGS}")
    if clustering == "kmeans":
        centres, assignment = kmeans(points, k, seed)
    else:
        centres, assignment = threshold_clusters(points, threshold * class_spread(points), seed, max_clusters)
    if rule == "centroid":
        return centres.astype(np.float32)
    rng = np.random.default_rng(seed)
    refs = []
    for j, centre in enumerate(centres):
        members = np.asarray(points)[assignment == j]
        if not len(members):
            continue
        if rule == "random":
            refs.append(members[rng.integers(len(members))])
            continue
        distances = _sq_distances(members, centre[None])[:, 0]
        refs.append(members[distances.argmin() if rule == "nearest_center" else distances.argmax()])
    return np.stack(refs).astype(np.float32)


def random_subset(points: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``size`` of ``points`` drawn at random without replacement (all of them when fewer)."""
    points = np.asarray(points)
    if len(points) <= size:
        return points.astype(np.float32)
    picked = np.random.default_rng(seed).choice(len(points), size=size, replace=False)
    return points[np.sort(picked)].astype(np.float32)


def vote(features: np.ndarray, refs: np.ndarray, ref_labels: np.ndarray, classes: int,
         distance: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Numpy twin of the in-graph vote: (per-frame class votes [..., T], vote shares [..., classes])."""
    if distance == "cosine":
        features = features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-6)
        refs = refs / np.maximum(np.linalg.norm(refs, axis=-1, keepdims=True), 1e-6)
    flat = features.reshape(-1, features.shape[-1])
    votes = ref_labels[_sq_distances(flat, refs).argmin(axis=1)].reshape(features.shape[:-1])
    shares = (votes[..., None] == np.arange(classes)).mean(axis=-2)
    return votes, shares


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)


@dataclass
class MemoryBank:
    """Stored vectors per class plus the references the ONNX graph takes as ``memory_refs``."""

    features: np.ndarray  # float32 [M, dim]
    labels: np.ndarray  # int64 [M]
    classes: list[str]
    clusters_per_class: int = 4
    rule: str = "nearest_center"
    max_per_class: int = 2048
    clustering: str = "kmeans"
    #: ``clustering="threshold"``: the distance, in units of the class's RMS spread, beyond which a
    #: vector opens a new cluster (relative, so one value suits encoders of any feature scale).
    cluster_threshold: float = 1.0
    max_clusters: int = 64
    matching: str = "references"
    subset_size: int = 32
    source_dir: Path | None = None
    #: Per row, the index of its confirmed example in ``example_keys`` (-1: a seed vector, no key).
    row_example: np.ndarray | None = None
    example_keys: list[str] = field(default_factory=list)
    _refs: np.ndarray | None = field(default=None, repr=False)
    _ref_labels: np.ndarray | None = field(default=None, repr=False)
    _stale: set[int] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.clustering, CLUSTERINGS, "clustering"),
                                     (self.matching, MATCHINGS, "matching"), (self.rule, REFERENCE_RULES, "rule")):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; use one of {allowed}")
        if self.row_example is None:
            self.row_example = np.full(len(self.labels), -1, np.int64)
        self._key_set = set(self.example_keys)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MemoryBank:
        """From a version directory or a ``memory.npz`` file."""
        path = Path(path)
        npz_path = path / MEMORY_NAME if path.is_dir() else path
        with np.load(npz_path) as data:
            config = json.loads(str(data["config"]))
            examples = {}
            if "row_example" in data:  # banks saved before confirmed examples had keys have none
                examples = {"row_example": data["row_example"].astype(np.int64),
                            "example_keys": [str(key) for key in data["example_keys"]]}
            return cls(features=data["features"].astype(np.float32), labels=data["labels"].astype(np.int64),
                       source_dir=npz_path.parent, _refs=data["refs"], _ref_labels=data["ref_labels"],
                       **examples, **config)

    @classmethod
    def build(cls, features: np.ndarray, labels: np.ndarray, classes: list[str], **config) -> MemoryBank:
        bank = cls(features=np.asarray(features, np.float32), labels=np.asarray(labels, np.int64),
                   classes=list(classes), **config)
        for index in range(len(bank.classes)):
            bank._drop_oldest(index)
        bank.recluster()
        return bank

    @property
    def dirty(self) -> bool:
        return self._refs is None or bool(self._stale)

    def contains(self, key: str) -> bool:
        """Whether the confirmed example ``key`` is in the bank (added and not evicted)."""
        return key in self._key_set

    def class_sizes(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts)}

    def add(self, features: np.ndarray, label: int | str, key: str | None = None) -> bool:
        """Store a confirmed example (one vector [dim] or a clip's frame vectors [T, dim]).

        Returns False, changing nothing, when ``key`` is already in the bank. Re-clusters lazily.
        """
        if isinstance(label, str):
            index = self.classes.index(label) if label in self.classes else -1
        else:
            index = int(label)
        if not 0 <= index < len(self.classes):
            raise ValueError(f"label {label!r} is not one of {self.classes}")
        if key is not None and key in self._key_set:
            return False
        example = -1
        if key is not None:
            example = len(self.example_keys)
            self.example_keys.append(key)
            self._key_set.add(key)
        rows = np.asarray(features, np.float32).reshape(-1, self.features.shape[1])
        self.features = np.concatenate([self.features, rows])
        self.labels = np.concatenate([self.labels, np.full(len(rows), index, np.int64)])
        self.row_example = np.concatenate([self.row_example, np.full(len(rows), example, np.int64)])
        self._drop_oldest(index)
        self._stale.add(index)
        return True

    def evict(self) -> None:
        """Apply ``max_per_class`` to every class (after lowering it)."""
        for index in range(len(self.classes)):
            if self._drop_oldest(index):
                self._stale.add(index)

    def recluster(self) -> None:
        """Re-cluster the stale classes (every class when no references exist yet)."""
        everything = self._refs is None
        todo = set(range(len(self.classes))) if everything else self._stale
        refs, ref_labels = [], []
        for index in range(len(self.classes)):
            if index in todo:
                chosen = self._references(self.features[self.labels == index], index)
            else:
                chosen = self._refs[self._ref_labels == index]
            refs.append(chosen.astype(np.float32))
            ref_labels.append(np.full(len(chosen), index, np.int64))
        self._refs, self._ref_labels = np.concatenate(refs), np.concatenate(ref_labels)
        self._stale = set()

    def _references(self, members: np.ndarray, index: int) -> np.ndarray:
        """The class's references: seeded by the class index, so re-clustering one class equals re-clustering all."""
        if not len(members):
            return members[:0]
        if self.matching == "random_subset":
            return random_subset(members, self.subset_size, seed=index)
        return select_references(members, self.clusters_per_class, self.rule, seed=index, clustering=self.clustering,
                                 threshold=self.cluster_threshold, max_clusters=self.max_clusters)

    def config(self) -> dict:
        """What shapes the references (saved with the bank, so a loaded bank re-clusters the same way)."""
        return {"classes": self.classes, "clusters_per_class": self.clusters_per_class, "rule": self.rule,
                "max_per_class": self.max_per_class, "clustering": self.clustering,
                "cluster_threshold": self.cluster_threshold, "max_clusters": self.max_clusters,
                "matching": self.matching, "subset_size": self.subset_size}

    def feeds(self) -> dict[str, np.ndarray]:
        if self.dirty:
            self.recluster()
        return {"memory_refs": self._refs.astype(np.float32), "memory_labels": self._ref_labels.astype(np.int64)}

    def save(self, npz_path: Path) -> None:
        feeds = self.feeds()
        config = self.config()
        with open(npz_path, "wb") as handle:  # np.savez on a path would append ".npz" to temp names
            np.savez(handle, features=self.features, labels=self.labels, refs=feeds["memory_refs"],
                     ref_labels=feeds["memory_labels"], config=np.array(json.dumps(config)),
                     row_example=self.row_example, example_keys=np.array(self.example_keys, dtype=str))

    def publish(self, engines_root: str | os.PathLike, metrics: dict | None = None,
                if_latest: int | None = None) -> Path:
        """Publish this bank beside the model it came from as a new early_action version (atomic).

        ``if_latest``: publish only while that is still the newest version (else NotLatest).
        """
        source = self.source_dir
        if source is None:
            raise ValueError("a bank built in memory has no model to publish beside; load it from a version")
        manifest = EngineManifest.load(source)
        with tempfile.TemporaryDirectory() as scratch:
            bank_path = Path(scratch) / MEMORY_NAME
            self.save(bank_path)
            final = publish_version(
                Path(engines_root), manifest.engine, {MODEL_NAME: source / MODEL_NAME, MEMORY_NAME: bank_path},
                feeds={spec.name: spec.feed for spec in manifest.inputs}, labels=manifest.labels,
                training=manifest.training, preprocessing=manifest.preprocessing, serving=manifest.serving,
                metrics={**manifest.metrics, **(metrics or {})}, if_latest=if_latest,
            )
        self.source_dir = final
        return final

    def _drop_oldest(self, index: int) -> bool:
        """FIFO by whole example within class ``index``; returns whether anything was dropped."""
        positions = np.flatnonzero(self.labels == index)
        excess = len(positions) - self.max_per_class
        if excess <= 0:
            return False
        keep = np.ones(len(self.labels), bool)
        keep[positions[:excess]] = False
        cut = set(self.row_example[~keep].tolist()) - {-1}
        keep &= ~np.isin(self.row_example, list(cut))  # an example goes whole or not at all
        self.features, self.labels = self.features[keep], self.labels[keep]
        self.row_example = self.row_example[keep]
        self._forget_examples(cut)
        return True

    def _forget_examples(self, gone: set[int]) -> None:
        """Drop the keys of evicted examples and renumber the rows' example indices."""
        if not gone:
            return
        kept = [i for i in range(len(self.example_keys)) if i not in gone]
        renumber = np.full(len(self.example_keys) + 1, -1, np.int64)  # last slot maps -1 to -1
        renumber[kept] = np.arange(len(kept))
        self.row_example = renumber[self.row_example]
        self.example_keys = [self.example_keys[i] for i in kept]
        self._key_set = set(self.example_keys)

