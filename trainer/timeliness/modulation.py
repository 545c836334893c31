"""Gradient modulation: damp the encoder of the modality that is already ahead, so the other keeps learning.

Per step each modality's score is the sum over the batch of its head's softmax probability on the
true class. For the modality whose score ratio to the other exceeds 1, its encoder's gradients are
multiplied by ``1 - tanh(alpha * (ratio - 1))`` (1 at ratio 1, decreasing towards 0); the other
encoder keeps coefficient 1.
"""

from __future__ import annotations

import math

import torch

DEFAULT_ALPHA = 1.0


def coefficient(ratio: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Gradient scale for a modality whose score is ``ratio`` times the other's."""
    if ratio <= 1.0:
        return 1.0
    return 1.0 - math.tanh(alpha * (ratio - 1.0))


def modality_scores(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    return {name: float(torch.softmax(value.detach(), -1).gather(1, labels[:, None]).sum()) for name, value in logits.items()}


def coefficients(visual_logits: torch.Tensor, text_logits: torch.Tensor, labels: torch.Tensor,
                 alpha: float = DEFAULT_ALPHA) -> dict[str, float]:
    scores = modality_scores({"visual": visual_logits, "text": text_logits}, labels)
    eps = 1e-8
    return {"visual": coefficient(scores["visual"] / (scores["text"] + eps), alpha),
            "text": coefficient(scores["text"] / (scores["visual"] + eps), alpha)}


def scale_gradients(encoders: dict[str, list[torch.nn.Parameter]], coeffs: dict[str, float]) -> None:
    """Multiply each encoder's accumulated gradients by its coefficient (call between backward and step)."""
    for name, parameters in encoders.items():
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad.mul_(coeffs[name])
