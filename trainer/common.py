"""Small training helpers shared by the trainers: seeding, the convergence rule, confusion-matrix PNGs."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Same seed → same weights (on every rank); ``threads`` caps torch's CPU threads when given."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


@dataclass
class Convergence:
    """A loss has converged when it drops to ``threshold``, when it changes by at most ``min_change``
    between two rounds (the label-teacher document's absolute rules, ¶48 and ¶55; ``None`` = off), or
    when it stops improving for ``patience`` rounds (the plateau rule).

    ``max_rounds`` bounds the CPU budget whatever the loss does.
    """

    threshold: float = 0.0
    patience: int = 2
    min_delta: float = 1e-3
    max_rounds: int = 10
    min_change: float | None = None
    history: list[float] = field(default_factory=list)

    def update(self, loss: float) -> bool:
        """Record one round's loss; True when training should stop."""
        self.history.append(loss)
        if loss <= self.threshold or len(self.history) >= self.max_rounds:
            return True
        if self.min_change is not None and len(self.history) >= 2 and \
                abs(self.history[-1] - self.history[-2]) <= self.min_change:
            return True
        best_before = min(self.history[:-self.patience], default=float("inf"))
        recent_best = min(self.history[-self.patience:])
        return len(self.history) > self.patience and recent_best > best_before - self.min_delta

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])


def save_confusion_png(matrix: np.ndarray, labels: Sequence[str], title: str, path: Path) -> Path:
    """Row = truth, column = prediction; counts written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    for (row, col), count in np.ndenumerate(matrix):
        axis.text(col, row, str(int(count)), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
