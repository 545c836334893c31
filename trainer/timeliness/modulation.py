"""Gradient modulation: damp the encoder of the modality that is already ahead, so the other keeps learning.

Per step each modality's prediction score is the sum over the batch of its head's softmax probability
on the true class. The coefficient follows the timeliness document's claims 3-6: the ratio of the
modality's score to the other modality's; above 1 it is modulated into (0, 1) as
``1 - tanh(alpha * (ratio - 1))`` (1 at ratio 1, decreasing towards 0), otherwise it is 1.
What it multiplies (``SCOPES``): ``own``, the gradient that reaches the encoder from the modality's own
head's loss only (claims 3 and 5; applied inside the backward pass, ``model.GradientScale``); ``all``,
the encoder's whole accumulated gradient, the fusion loss's included (``scale_gradients``).
"""

from __future__ import annotations

import math

import torch

DEFAULT_ALPHA = 1.0
SCOPES = ("own", "all")


def coefficient(ratio: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Gradient scale for a modality whose score is ``ratio`` times the other's."""
    if ratio <= 1.0:
        return 1.0
    return 1.0 - math.tanh(alpha * (ratio - 1.0))


def modality_scores(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    return {name: float(torch.softmax(value.detach(), -1).gather(1, labels[:, None]).sum()) for name, value in logits.items()}


def coefficients(visual_logits: torch.Tensor, text_logits: torch.Tensor, labels: torch.Tensor,
                 alpha: float = DEFAULT_ALPHA, all_reduce=None) -> dict[str, float]:
    """``all_reduce`` (in-place sum over torchrun ranks) makes every rank scale by the same coefficient."""
    scores = modality_scores({"visual": visual_logits, "text": text_logits}, labels)
    if all_reduce is not None:
        summed = all_reduce(torch.tensor([scores["visual"], scores["text"]], dtype=torch.float64))
        scores = {"visual": float(summed[0]), "text": float(summed[1])}
    eps = 1e-8
    return {"visual": coefficient(scores["visual"] / (scores["text"] + eps), alpha),
            "text": coefficient(scores["text"] / (scores["visual"] + eps), alpha)}


def scale_gradients(encoders: dict[str, list[torch.nn.Parameter]], coeffs: dict[str, float]) -> None:
    """Multiply each encoder's accumulated gradients by its coefficient (call between backward and step)."""
    for name, parameters in encoders.items():
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad.mul_(coeffs[name])
