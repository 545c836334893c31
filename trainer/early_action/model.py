"""Early-action predictor: CNN + GRU frame encoder, and a nearest-reference vote against a memory bank.

The exported graph takes the memory bank as inputs (``memory_refs [R, D]``, ``memory_labels [R]``),
so the worker can grow the bank without re-exporting. Each frame votes for the class of its nearest
reference; the vote shares are ``action_probs``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.timeliness.model import FrameCNN


class EarlyActionEncoder(nn.Module):
    """uint8 frames [B, T, H, W, 3] → per-frame features [B, T, dim] (GRU state after each frame)."""

    def __init__(self, dim: int = 32, hidden: int = 64, classes: int = 6):
        super().__init__()
        self.cnn = FrameCNN(hidden)
        self.motion = nn.Linear(2 * hidden, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.project = nn.Linear(hidden, dim)
        self.softmax_head = nn.Linear(dim, classes)  # the auxiliary (and plain-GRU baseline) classifier

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        per_frame = self.cnn(frames)
        # frame differences make the subtle early motion explicit before the recurrent layer
        previous = torch.cat([per_frame[:, :1], per_frame[:, :-1]], dim=1)
        mixed = F.relu(self.motion(torch.cat([per_frame, per_frame - previous], dim=-1)))
        states, _ = self.gru(mixed)
        return self.project(states)


def distances(features: torch.Tensor, refs: torch.Tensor, metric: str) -> torch.Tensor:
    """[B, T, R] squared euclidean, or 1 - cosine similarity."""
    if metric == "cosine":
        return 1.0 - F.normalize(features, dim=-1) @ F.normalize(refs, dim=-1).T
    # explicit differences, not the |a|²-2ab+|b|² expansion: exact enough that ties break like numpy's
    return (features.unsqueeze(-2) - refs).pow(2).sum(-1)


def memory_logits(features: torch.Tensor, refs: torch.Tensor, ref_labels: torch.Tensor, classes: int,
                  metric: str, temperature: float = 1.0) -> torch.Tensor:
    """Differentiable surrogate of the vote: per class logsumexp of -distance/τ over its references."""
    scores = -distances(features, refs, metric) / temperature
    onehot = F.one_hot(ref_labels, classes).bool()  # [R, C]
    masked = scores.unsqueeze(-1).masked_fill(~onehot, -1e9)  # [B, T, R, C]
    return torch.logsumexp(masked, dim=-2)


class MemoryVoteModel(nn.Module):
    """The exported graph: encoder + in-graph nearest-reference vote."""

    def __init__(self, encoder: EarlyActionEncoder, classes: int, metric: str = "euclidean"):
        super().__init__()
        self.encoder, self.classes, self.metric = encoder, classes, metric

    def forward(self, frames: torch.Tensor, memory_refs: torch.Tensor, memory_labels: torch.Tensor):
        features = self.encoder(frames)
        nearest = distances(features, memory_refs, self.metric).argmin(dim=-1)  # [B, T]
        votes = memory_labels[nearest]
        shares = F.one_hot(votes, self.classes).float().mean(dim=1)
        return shares, votes, features
