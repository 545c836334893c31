"""Loss functions of the classifier's distillation (kept apart so tests can check their composition)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def quality_distillation_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                              teacher_feature: torch.Tensor, student_feature: torch.Tensor,
                              labels: torch.Tensor, class_weights: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, dict[str, float]]:
    """CE(teacher, label) + CE(student, label) + MSE(teacher feature, projected student feature).

    The teacher feature is a target for the student, so no gradient flows back into it through the
    distance term (the teacher learns only from its own CE). ``class_weights`` weigh the student's CE.
    """
    teacher_ce = F.cross_entropy(teacher_logits, labels)
    student_ce = F.cross_entropy(student_logits, labels, weight=class_weights)
    distance = F.mse_loss(student_feature, teacher_feature.detach())
    total = teacher_ce + student_ce + distance
    return total, {"teacher_ce": teacher_ce.item(), "student_ce": student_ce.item(), "distance": distance.item()}


def tag_distillation_loss(student_tag_logits: torch.Tensor, teacher_tag_probs: torch.Tensor) -> torch.Tensor:
    """Per-tag BCE of the student's pooled tag scores against the label teacher's probabilities."""
    return F.binary_cross_entropy_with_logits(student_tag_logits, teacher_tag_probs)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the rows that carry a class (target >= 0); 0 (with a graph) when none does."""
    valid = target >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], target[valid])
