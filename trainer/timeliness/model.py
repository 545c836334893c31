"""Timeliness model: visual encoder + hashed-title encoder, cross-attention fusion, three heads.

The graph takes uint8 frames ``[B, T, H, W, 3]`` and int64 ``title_ids [B, L]`` (0 = padding) and
returns softmax probabilities of the fusion head, the visual head and the text head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MEAN, STD = 0.45, 0.25  # normalisation inside the graph (documented in the manifest)


class FrameCNN(nn.Module):
    """Per-frame features: uint8 [B, T, H, W, 3] → float [B, T, dim]."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 24, 3, stride=2, padding=1), nn.BatchNorm2d(24), nn.ReLU(),
            nn.Conv2d(24, 48, 3, stride=2, padding=1), nn.BatchNorm2d(48), nn.ReLU(),
            nn.Conv2d(48, dim, 3, stride=2, padding=1), nn.BatchNorm2d(dim), nn.ReLU(),
            nn.Conv2d(dim, dim, 3, stride=2, padding=1), nn.BatchNorm2d(dim), nn.ReLU(),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = frames.shape
        x = (frames.float() / 255.0 - MEAN) / STD
        x = x.reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        maps = self.layers(x)
        # max keeps a small corner badge that the mean would dilute
        return (maps.amax(dim=(2, 3)) + maps.mean(dim=(2, 3))).reshape(b, t, -1)


class FeatureTokens(nn.Module):
    """Per-frame tokens from a pretrained encoder's features: float [B, T, D] → [B, T, dim]."""

    def __init__(self, features_dim: int, dim: int = 64):
        super().__init__()
        self.layers = nn.Sequential(nn.LayerNorm(features_dim), nn.Linear(features_dim, 4 * dim), nn.ReLU(),
                                    nn.Linear(4 * dim, dim), nn.ReLU())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class TextEncoder(nn.Module):
    """Hashed token ids [B, L] → token vectors [B, L, dim] and a padding mask [B, L] (1 = real)."""

    def __init__(self, buckets: int, dim: int = 64):
        super().__init__()
        self.embed = nn.Embedding(buckets, dim, padding_idx=0)
        self.mix = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = (ids > 0).float()
        return self.mix(self.embed(ids)), mask


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)


class CrossAttention(nn.Module):
    """Visual tokens attend over title tokens (plus a learned null token, so an empty title is safe)."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.null = nn.Parameter(torch.zeros(1, 1, dim))
        self.out = nn.Linear(dim, dim)

    def forward(self, visual: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = text.shape[0]
        keys = torch.cat([self.null.expand(b, -1, -1), text], dim=1)
        valid = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        scores = self.q(visual) @ self.k(keys).transpose(1, 2) / math.sqrt(visual.shape[-1])
        scores = scores - (1.0 - valid.unsqueeze(1)) * 1e4
        attended = torch.softmax(scores, dim=-1) @ self.v(keys)
        return self.out(attended).mean(dim=1)


class GradientScale:
    """A coefficient the backward pass reads: set after the forward (when the modality scores are known)."""

    def __init__(self, value: float = 1.0):
        self.value = value


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient flowing back is multiplied by ``scale.value`` at backward time."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: GradientScale) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale.value, None


def scale_gradient(x: torch.Tensor, scale: GradientScale | None) -> torch.Tensor:
    return x if scale is None else _ScaleGradient.apply(x, scale)


class TimelinessModel(nn.Module):
    """``features_dim`` set: the visual tokens come from a pretrained encoder's features, not pixels."""

    def __init__(self, buckets: int, classes: int = 4, dim: int = 64, features_dim: int | None = None):
        super().__init__()
        self.visual = FrameCNN(dim) if features_dim is None else FeatureTokens(features_dim, dim)
        self.text = TextEncoder(buckets, dim)
        self.fusion = CrossAttention(dim)
        self.visual_head = nn.Linear(dim, classes)
        self.text_head = nn.Linear(dim, classes)
        self.fusion_head = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Linear(dim, classes))

    def logits(self, frames: torch.Tensor, title_ids: torch.Tensor, detach_unimodal: bool = False,
               own_scales: dict[str, GradientScale] | None = None):
        """(fusion, visual, text) logits; ``detach_unimodal`` keeps the unimodal heads off the encoders.

        ``own_scales`` multiplies the gradient that each modality's *own* head sends back into its encoder
        (the timeliness document's claims 3 and 5: the first loss's gradient, weighted, updates the
        encoder); the fusion head's gradient into the encoders is not touched.
        """
        visual_tokens = self.visual(frames)
        text_tokens, mask = self.text(title_ids)
        visual_vec, text_vec = visual_tokens.mean(dim=1), masked_mean(text_tokens, mask)
        fused = self.fusion(visual_tokens, text_tokens, mask)
        fusion = self.fusion_head(torch.cat([visual_vec, text_vec, fused], dim=-1))
        if detach_unimodal:
            visual_vec, text_vec = visual_vec.detach(), text_vec.detach()
        elif own_scales is not None:
            visual_vec = scale_gradient(visual_vec, own_scales.get("visual"))
            text_vec = scale_gradient(text_vec, own_scales.get("text"))
        return fusion, self.visual_head(visual_vec), self.text_head(text_vec)

    def forward(self, frames: torch.Tensor, title_ids: torch.Tensor):
        fusion, visual, text = self.logits(frames, title_ids)
        return torch.softmax(fusion, -1), torch.softmax(visual, -1), torch.softmax(text, -1)

    def encoder_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"visual": list(self.visual.parameters()), "text": list(self.text.parameters())}


class TrainingLogits(nn.Module):
    """The model's three logits as one forward (what DistributedDataParallel wraps)."""

    def __init__(self, model: TimelinessModel, detach_unimodal: bool, own_scales: dict[str, GradientScale] | None = None):
        super().__init__()
        self.model, self.detach_unimodal, self.own_scales = model, detach_unimodal, own_scales

    def forward(self, frames: torch.Tensor, title_ids: torch.Tensor):
        return self.model.logits(frames, title_ids, self.detach_unimodal, self.own_scales)


class FeatureServing(nn.Module):
    """The heads graph on top of an encoder: ``features [B*T, D]`` + ``title_ids`` → the three probabilities."""

    def __init__(self, model: TimelinessModel, frames_per_clip: int):
        super().__init__()
        self.model, self.frames_per_clip = model, frames_per_clip

    def forward(self, features: torch.Tensor, title_ids: torch.Tensor):
        return self.model(features.reshape(-1, self.frames_per_clip, features.shape[-1]), title_ids)
