"""The naive baseline's PyTorch eager model: three small per-frame CNNs, one per engine.

Imported only by the naive baseline (torch is never part of the worker).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

#: Output sizes per engine, as the engines' heads (category/tags/quality, timeliness, action).
HEADS = {"classifier": (6, 24, 4), "timeliness": (4,), "early_action": (6,)}


class Backbone(nn.Module):
    def __init__(self, width: int, outputs: tuple[int, ...]) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in itertools.pairwise(chans)
        )
        self.heads = nn.ModuleList(nn.Linear(8 * width, n) for n in outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return x.mean(dim=(2, 3))


class NaiveTagger(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.engines = nn.ModuleDict({k: Backbone(width, v) for k, v in HEADS.items()})

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 ``[T, H, W, 3]`` full-size frames → softmax scores per head (resize in torch)."""
        x = frames.permute(0, 3, 1, 2).float().div(255)
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        out = {}
        for name, backbone in self.engines.items():
            pooled = backbone(x).mean(dim=0, keepdim=True)  # average over the T frames
            for index, head in enumerate(backbone.heads):
                out[f"{name}_{index}"] = torch.softmax(head(pooled), dim=-1)
        return out


def sized_model(target_params: int | None) -> NaiveTagger:
    """The narrowest-step width whose parameter count does not exceed ``target_params``."""
    torch.manual_seed(0)
    width = 8
    while target_params and parameters(NaiveTagger(width + 4)) <= target_params:
        width += 4
    return NaiveTagger(width).eval()


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
