"""A memory bank made worse on purpose, for the memory writer's tests and measurement.

thin_class(engines_root, "u_turn")   # publishes early_action/N+1 with u_turn cut to 8 atypical vectors
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.engines.repository import latest_version

KEPT_VECTORS = 8


def thin_class(
    engines_root: Path, label: str, keep: int = KEPT_VECTORS, max_per_class: int | None = None
) -> Path:
    """Publish the newest early_action bank with ``label`` cut to its ``keep`` vectors farthest from the
    class centre (atypical frames: a class the memory barely knows); ``max_per_class`` bounds every class.

    Returns the published version folder.
    """
    bank = MemoryBank.load(latest_version(Path(engines_root) / "early_action"))
    rows = np.flatnonzero(bank.labels == bank.classes.index(label))
    spread = ((bank.features[rows] - bank.features[rows].mean(axis=0)) ** 2).sum(axis=1)
    kept = np.ones(len(bank.labels), bool)
    kept[rows[np.argsort(-spread)[keep:]]] = False
    thinned = MemoryBank.build(
        bank.features[kept],
        bank.labels[kept],
        bank.classes,
        **{key: value for key, value in bank.config().items() if key not in ("classes", "max_per_class")},
        max_per_class=max_per_class or bank.max_per_class,
    )
    thinned.source_dir = bank.source_dir
    return thinned.publish(
        engines_root,
        {"thinned": {"label": label, "kept_vectors": keep, "max_per_class": thinned.max_per_class}},
    )
