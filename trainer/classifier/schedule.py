"""The student's alternating schedule: whole tag epochs and whole category epochs, in turn.

A tag epoch updates backbone + tag head against the label teacher; a category epoch updates
backbone + category head against the true categories (and the quality branch and head against the
gated quality teachers). Heads that an epoch does not train are frozen (requires_grad=False), so their
weights provably do not move. A dataset without tags has category epochs only; one with tags only,
tag epochs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from trainer.classifier.nets import Student

Phase = Literal["tag", "category", "joint"]
SCHEDULES = ("alternating", "joint", "category-only")

TRAINED_BY_PHASE: dict[Phase, tuple[str, ...]] = {
    "tag": ("backbone", "tag_head"),
    "category": ("backbone", "category_head", "quality_branch", "quality_head", "quality_projection"),
    "joint": ("backbone", "tag_head", "category_head", "quality_branch", "quality_head", "quality_projection"),
}


def phases_for(has_tags: bool, has_category_or_quality: bool, schedule: str = "alternating") -> tuple[Phase, ...]:
    """The phases the student cycles through, given what the dataset labels and the ``--schedule``.

    ``joint`` (the ablation's control for alternation): every epoch trains tags and category together,
    the two losses summed.
    """
    if schedule == "joint" and has_tags and has_category_or_quality:
        return ("joint",)
    phases: list[Phase] = []
    if has_tags and schedule == "alternating":
        phases.append("tag")
    if has_category_or_quality:
        phases.append("category")
    return tuple(phases) or ("tag",)


def phase_of_epoch(epoch: int, phases: Sequence[Phase] = ("tag", "category")) -> Phase:
    """Epoch ``epoch`` trains ``phases[epoch % len(phases)]``: tags on even epochs, categories on odd ones."""
    return phases[epoch % len(phases)]


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
