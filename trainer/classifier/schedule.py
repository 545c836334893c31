"""The student's alternating schedule: whole tag epochs and whole category epochs, in turn.

A tag epoch updates backbone + tag head against the label teacher; a category epoch updates
backbone + category head against the true categories (and the quality branch and head against the
gated quality teachers). Heads that an epoch does not train are frozen (requires_grad=False), so their
weights provably do not move.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from trainer.classifier.nets import Student

Phase = Literal["tag", "category"]

TRAINED_BY_PHASE: dict[Phase, tuple[str, ...]] = {
    "tag": ("backbone", "tag_head"),
    "category": ("backbone", "category_head", "quality_branch", "quality_head", "quality_projection"),
}


def phase_of_epoch(epoch: int, alternate: bool = True) -> Phase:
    """Even epochs train tags, odd epochs categories; without alternation every epoch is a category epoch."""
    return ("tag" if epoch % 2 == 0 else "category") if alternate else "category"


def trainable_for(student: Student, phase: Phase) -> list[nn.Parameter]:
    """Freeze every part the phase does not train; return the parameters it does."""
    trained = set(TRAINED_BY_PHASE[phase])
    parameters: list[nn.Parameter] = []
    for name, child in student.named_children():
        for parameter in child.parameters():
            parameter.requires_grad_(name in trained)
            if name in trained:
                parameters.append(parameter)
    return parameters
