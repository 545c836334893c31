"""The early-action memory bank (no torch): references the ONNX graph votes against, updatable online.

The bank keeps every stored feature vector (``features``/``labels``) and the references derived from
them: per class, k-means over the class's vectors, and per cluster one reference (the member nearest
the centre by default, or the centre itself). The references are an *input* of the ONNX graph, so a
worker can add confirmed examples and publish a new engine version without re-exporting the model.
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

REFERENCE_RULES = ("nearest_center", "centroid")
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


def select_references(points: np.ndarray, k: int, rule: str = "nearest_center", seed: int = 0) -> np.ndarray:
    """One reference per k-means cluster of ``points``: its member nearest the centre, or the centre."""
    if rule not in REFERENCE_RULES:
        raise ValueError(f"unknown reference rule {rule!r}; use one of {REFERENCE_RULES}")
    centres, assignment = kmeans(points, k, seed)
    if rule == "centroid":
        return centres.astype(np.float32)
    refs = []
    for j, centre in enumerate(centres):
        members = np.asarray(points)[assignment == j]
        if len(members):
            refs.append(members[_sq_distances(members, centre[None]).argmin()])
    return np.stack(refs).astype(np.float32)


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
    source_dir: Path | None = None
    _refs: np.ndarray | None = field(default=None, repr=False)
    _ref_labels: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MemoryBank":
        """From a version directory or a ``memory.npz`` file."""
        path = Path(path)
        npz_path = path / MEMORY_NAME if path.is_dir() else path
        with np.load(npz_path) as data:
            config = json.loads(str(data["config"]))
            return cls(features=data["features"].astype(np.float32), labels=data["labels"].astype(np.int64),
                       source_dir=npz_path.parent, _refs=data["refs"], _ref_labels=data["ref_labels"], **config)

    @classmethod
    def build(cls, features: np.ndarray, labels: np.ndarray, classes: list[str], **config) -> "MemoryBank":
        bank = cls(features=np.asarray(features, np.float32), labels=np.asarray(labels, np.int64),
                   classes=list(classes), **config)
        for index in range(len(bank.classes)):
            bank._drop_oldest(index)
        bank.recluster()
        return bank

    @property
    def dirty(self) -> bool:
        return self._refs is None

    def add(self, features: np.ndarray, label: int | str) -> None:
        """Store a confirmed example (one vector [dim] or a clip's frame vectors [T, dim]); re-cluster lazily."""
        index = self.classes.index(label) if isinstance(label, str) else int(label)
        if not 0 <= index < len(self.classes):
            raise ValueError(f"label {label!r} is not one of {self.classes}")
        rows = np.asarray(features, np.float32).reshape(-1, self.features.shape[1])
        self.features = np.concatenate([self.features, rows])
        self.labels = np.concatenate([self.labels, np.full(len(rows), index, np.int64)])
        self._drop_oldest(index)
        self._refs = self._ref_labels = None

    def recluster(self) -> None:
        refs, ref_labels = [], []
        for index in range(len(self.classes)):
            members = self.features[self.labels == index]
            if len(members):
                chosen = select_references(members, self.clusters_per_class, self.rule, seed=index)
                refs.append(chosen)
                ref_labels.append(np.full(len(chosen), index, np.int64))
        self._refs, self._ref_labels = np.concatenate(refs), np.concatenate(ref_labels)

    def feeds(self) -> dict[str, np.ndarray]:
        if self.dirty:
            self.recluster()
        return {"memory_refs": self._refs.astype(np.float32), "memory_labels": self._ref_labels.astype(np.int64)}

    def save(self, npz_path: Path) -> None:
        feeds = self.feeds()
        config = {"classes": self.classes, "clusters_per_class": self.clusters_per_class, "rule": self.rule,
                  "max_per_class": self.max_per_class}
        with open(npz_path, "wb") as handle:  # np.savez on a path would append ".npz" to temp names
            np.savez(handle, features=self.features, labels=self.labels, refs=feeds["memory_refs"],
                     ref_labels=feeds["memory_labels"], config=np.array(json.dumps(config)))

    def publish(self, engines_root: str | os.PathLike, metrics: dict | None = None) -> Path:
        """Publish this bank beside the model it came from as a new early_action version (atomic)."""
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
                metrics={**manifest.metrics, **(metrics or {})},
            )
        self.source_dir = final
        return final

    def _drop_oldest(self, index: int) -> None:
        positions = np.flatnonzero(self.labels == index)
        excess = len(positions) - self.max_per_class
        if excess > 0:
            keep = np.ones(len(self.labels), bool)
            keep[positions[:excess]] = False
            self.features, self.labels = self.features[keep], self.labels[keep]

