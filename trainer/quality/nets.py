"""The fragment quality student and its serving graph.

The student reads the fragments mosaic (``stream_tagger.sampling.FragmentPolicy``: a G×G grid of
P×P native-resolution patches per frame), never a resized frame, so blocking, ringing and noise
reach it at the scale where they live. Its trunk is the classifier's patch-stem CNN, one stride-2
stage deeper, so that with 7×7 patches of 32 px the last map has one cell per patch; the pooled
feature feeds the grade head and, for the gated multi-teacher distillation, a projection into the
teachers' feature space.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from trainer.classifier.nets import (
    MEAN,
    QUALITY_HEAD_INPUTS,
    STD,
    conv_stack,
    per_frame,
    quality_logits,
)

STUDENT_WIDTHS = (16, 32, 48, 64)


class FragmentQualityStudent(nn.Module):
    """Fragments ``[B, T, 3, G*P, G*P]`` (normalised) → grade logits and the projected feature."""

    def __init__(self, grades: int, feature_size: int, widths: tuple[int, ...] = STUDENT_WIDTHS,
                 head_on: str = "projected"):
        super().__init__()
        if head_on not in QUALITY_HEAD_INPUTS:
            raise ValueError(f"unknown quality head input {head_on!r}; use one of {QUALITY_HEAD_INPUTS}")
        self.head_on = head_on  # "projected": the head classifies the projected feature (the document's claim 6)
        self.trunk = conv_stack(list(widths), "mean")
        self.projection = nn.Linear(self.trunk.out_dim, feature_size)
        self.head = nn.Linear(feature_size if head_on == "projected" else self.trunk.out_dim, grades)

    def forward(self, fragments: torch.Tensor) -> dict[str, torch.Tensor]:
        texture = per_frame(self.trunk, fragments).mean(dim=1)
        feature = self.projection(texture)
        return {"quality_logits": quality_logits(self.head, texture, feature, self.head_on), "quality_feature": feature}


class ServingQuality(nn.Module):
    """uint8 fragments ``[B, T, G*P, G*P, 3]`` → ``quality_probs`` (softmax over the grades).

    :class:`Preprocess` (scale to [0, 1], standardise) is folded into the first convolution and its
    batch norm, so the exported graph never runs elementwise arithmetic over the whole mosaic
    (600 K values a clip, most of the branch's time when it did): it transposes the uint8 bytes,
    casts them and convolves. The fold is exact (the patch stem has no padding).
    """

    def __init__(self, student: FragmentQualityStudent):
        super().__init__()
        self.student = fold_preprocessing(student)

    def forward(self, fragments: torch.Tensor) -> torch.Tensor:
        pixels = fragments.permute(0, 1, 4, 2, 3).to(torch.float32)
        return torch.softmax(self.student(pixels)["quality_logits"], dim=-1)


@torch.no_grad()
def fold_preprocessing(student: FragmentQualityStudent) -> FragmentQualityStudent:
    """A copy of ``student`` (eval mode) that takes raw 0..255 pixels instead of standardised ones.

    conv(w, (x / 255 - mean) / std) = conv(w / (255 std), x) - sum(w) mean / std per output channel,
    and the batch norm that follows absorbs that constant into its running mean.
    """
    folded = copy.deepcopy(student).eval()
    conv, norm = folded.trunk[0], folded.trunk[1]
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, nn.BatchNorm2d) or conv.padding != (0, 0) \
            or conv.bias is not None:
        raise ValueError("the fold needs an unpadded, bias-free first convolution followed by a batch norm")
    norm.running_mean += conv.weight.sum(dim=(1, 2, 3)) * (MEAN / STD)
    conv.weight /= 255.0 * STD
    return folded
