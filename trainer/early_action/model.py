"""Early-action predictor: CNN + GRU frame encoder, and a nearest-reference vote against a memory bank.

The exported graph takes the memory bank as inputs (``memory_refs [R, D]``, ``memory_labels [R]``),
so the worker can grow the bank without re-exporting. Each frame votes for the class of its nearest
reference; the vote shares are ``action_probs``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.timeliness.model import MEAN, STD


class MotionCNN(nn.Module):
    """Each frame, its change since the previous frame and its change since the first frame (9
    channels) → [B, T, 2 * dim].

    The cues of the coming manoeuvre are changes of a small object: a blinking lamp and brake lights
    switching on show in the change since the previous frame, a slow sideways drift accumulates in
    the change since the first frame. Both enter at pixel level; pooling keeps the maximum and mean.
    """

    def __init__(self, dim: int = 64, widths: tuple[int, ...] = (24, 48, 64)):
        super().__init__()
        # A 4x4/4 patch stem keeps every pixel (144 values per patch) at a fifth of the CPU cost of a
        # full-resolution 3x3 first layer; then stride-2 3x3 convolutions and one at full stride.
        layers: list[nn.Module] = []
        channels = 9
        for depth, width in enumerate(widths):
            kernel, stride, padding = (4, 4, 0) if depth == 0 else (3, 2, 1)
            layers += [nn.Conv2d(channels, width, kernel, stride=stride, padding=padding), nn.BatchNorm2d(width),
                       nn.ReLU()]
            channels = width
        layers += [nn.Conv2d(channels, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = frames.shape
        x = (frames.float() / 255.0 - MEAN) / STD
        previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
        x = torch.cat([x, x - previous, x - x[:, :1]], dim=-1).reshape(b * t, h, w, 3 * c).permute(0, 3, 1, 2)
        maps = self.layers(x)
        pooled = torch.cat([maps.amax(dim=(2, 3)), maps.mean(dim=(2, 3))], dim=-1)
        return pooled.reshape(b, t, -1)


class MotionMLP(nn.Module):
    """The same three signals over a pretrained encoder's features: each frame's feature, its change
    since the previous frame and since the first frame → [B, T, 2 * dim]."""

    def __init__(self, features_dim: int, dim: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(features_dim)
        self.layers = nn.Sequential(nn.Linear(3 * features_dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, 2 * dim),
                                    nn.ReLU())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.norm(features)
        previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
        return self.layers(torch.cat([x, x - previous, x - x[:, :1]], dim=-1))


GRU_DIRECTIONS = ("bi", "uni")


class EarlyActionEncoder(nn.Module):
    """uint8 frames [B, T, H, W, 3] (or encoder features [B, T, D]) → per-frame features [B, T, dim].

    ``gru="bi"``: a bidirectional GRU, each frame's feature sees the whole early window, so every
    frame's vote can rest on the motion around it. ``gru="uni"``: frame t sees frames 0..t only (the
    memory-network document's RNN), so the per-frame votes differ and early frames vote on less.
    """

    def __init__(self, dim: int = 32, hidden: int = 64, classes: int = 6, features_dim: int | None = None,
                 gru: str = "bi"):
        super().__init__()
        if gru not in GRU_DIRECTIONS:
            raise ValueError(f"unknown GRU direction {gru!r}; use one of {GRU_DIRECTIONS}")
        self.cnn = MotionCNN(hidden) if features_dim is None else MotionMLP(features_dim, hidden)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=gru == "bi")
        self.project = nn.Linear((2 if gru == "bi" else 1) * hidden, dim)
        self.softmax_head = nn.Linear(dim, classes)  # the auxiliary (and plain-GRU baseline) classifier

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.cnn(frames))
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


class AuxiliaryLogits(nn.Module):
    """Per-frame logits of the encoder's softmax head (the auxiliary network's training forward)."""

    def __init__(self, encoder: EarlyActionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder.softmax_head(self.encoder(frames))


class MemoryTraining(nn.Module):
    """Features and softmax-head logits in one forward (what DistributedDataParallel wraps)."""

    def __init__(self, encoder: EarlyActionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(frames)
        return features, self.encoder.softmax_head(features)


class FeatureServing(nn.Module):
    """The heads graph on top of an encoder: ``encoder_features [B*T, D]`` + the bank → the vote."""

    def __init__(self, model: MemoryVoteModel, frames_per_clip: int):
        super().__init__()
        self.model, self.frames_per_clip = model, frames_per_clip

    def forward(self, features: torch.Tensor, memory_refs: torch.Tensor, memory_labels: torch.Tensor):
        frames = features.reshape(-1, self.frames_per_clip, features.shape[-1])
        return self.model(frames, memory_refs, memory_labels)
