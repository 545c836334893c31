"""The training stages: label teacher, quality teachers (+ selection and gate), alternating student."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from trainer.classifier.clips import ClipSet
from trainer.classifier.losses import quality_distillation_loss, tag_distillation_loss
from trainer.classifier.nets import GatedQualityTeachers, LabelTeacher, Preprocess, Student
from trainer.classifier.schedule import phase_of_epoch, trainable_for
from trainer.common import Convergence

PREPROCESS = Preprocess()
BatchLoss = Callable[[torch.Tensor, ClipSet], torch.Tensor]


@dataclass
class Budget:
    """CPU-sized defaults: each stage stops at convergence or at its epoch cap."""

    batch_size: int = 32
    lr: float = 2e-3
    teacher_epochs: int = 20
    quality_epochs: int = 6
    gate_epochs: int = 3
    student_epochs: int = 50
    patience: int = 2
    top_k: int = 2
    flip: bool = True
    #: Frames of each clip the student trains on (a random, time-ordered subset; it serves all 8):
    #: half the CPU per epoch for a student twice as wide, and a temporal augmentation.
    student_frames: int | None = 4


def random_flips(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each clip left-right and/or top-bottom at random (``[B, T, C, H, W]``).

    Every label of the world (tags, category, quality) is unchanged by a mirror, and the doubled
    variety keeps the networks from memorising the noisy training tags.
    """
    horizontal, vertical = torch.rand(2, frames.shape[0], generator=generator) < 0.5
    frames = torch.where(horizontal[:, None, None, None, None], frames.flip(-1), frames)
    return torch.where(vertical[:, None, None, None, None], frames.flip(-2), frames)


def random_frames(frames: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` of the T frames (``[B, T, ...]``), picked at random and kept in time order."""
    picked = torch.randperm(frames.shape[1], generator=generator)[:count].sort().values
    return frames[:, picked]


def run_epoch(model: nn.Module, parameters: list[nn.Parameter], optimizer: torch.optim.Optimizer, clips: ClipSet,
              batch_loss: BatchLoss, budget: Budget, generator: torch.Generator, desc: str,
              frames_per_clip: int | None = None) -> float:
    """One pass over ``clips``; returns the mean loss. Only ``parameters`` receive gradients.

    ``frames_per_clip`` trains on a random subset of each clip's frames (a network that pools
    per-frame outputs over time serves all of them).
    """
    model.train()
    losses = []
    for index in tqdm(list(clips.batches(budget.batch_size, generator)), desc=desc, leave=False, unit="batch"):
        frames = clips.frames[index]
        if frames_per_clip is not None:
            frames = random_frames(frames, frames_per_clip, generator)
        frames = PREPROCESS(frames)
        if budget.flip:
            frames = random_flips(frames, generator)
        loss = batch_loss(frames, clips.subset(index.numpy()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def fit(model: nn.Module, clips: ClipSet, batch_loss: BatchLoss, budget: Budget, epochs: int, seed: int,
        desc: str) -> list[float]:
    """Train every parameter of ``model`` until the loss converges (threshold / plateau / epoch cap)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
    generator = torch.Generator().manual_seed(seed)
    rule = Convergence(patience=budget.patience, max_rounds=epochs)
    for epoch in tqdm(range(epochs), desc=desc, unit="epoch"):
        loss = run_epoch(model, parameters, optimizer, clips, batch_loss, budget, generator, f"{desc} {epoch}")
        schedule.step()
        if rule.update(loss):
            break
    return rule.history


def train_label_teacher(clips: ClipSet, budget: Budget, seed: int) -> tuple[LabelTeacher, list[float]]:
    """Per-tag BCE against the (noisy) training tags."""
    teacher = LabelTeacher(tags=clips.tags.shape[1])
    history = fit(teacher, clips, lambda x, b: F.binary_cross_entropy_with_logits(teacher(x), b.tags),
                  budget, budget.teacher_epochs, seed, "label teacher")
    return teacher, history


@torch.no_grad()
def predict(model: nn.Module, clips: ClipSet, head: Callable[[nn.Module, torch.Tensor], torch.Tensor],
            batch_size: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([head(model, PREPROCESS(clips.frames[i])) for i in clips.batches(batch_size)])


def train_quality_teacher(teacher: nn.Module, clips: ClipSet, budget: Budget, seed: int, name: str) -> list[float]:
    return fit(teacher, clips, lambda x, b: F.cross_entropy(teacher(x), b.quality), budget,
               budget.quality_epochs, seed, f"quality {name}")


def train_gate(gated: GatedQualityTeachers, clips: ClipSet, budget: Budget, seed: int) -> list[float]:
    """Learn the gate and fused head on frozen teachers."""
    gated.teachers.requires_grad_(False)
    history = fit(gated, clips, lambda x, b: F.cross_entropy(gated(x)["logits"], b.quality), budget,
                  budget.gate_epochs, seed, "quality gate")
    return history


def student_batch_loss(student: Student, phase: str, gated: GatedQualityTeachers | None,
                       use_teacher_tags: bool) -> BatchLoss:
    """The loss of one batch in a tag epoch or in a category epoch."""
    def tag_loss(x: torch.Tensor, batch: ClipSet) -> torch.Tensor:
        target = batch.teacher_tags if use_teacher_tags else batch.tags
        return tag_distillation_loss(student(x)["tag_logits"], target)

    def category_loss(x: torch.Tensor, batch: ClipSet) -> torch.Tensor:
        out = student(x)
        loss = F.cross_entropy(out["category_logits"], batch.category)
        if gated is None:
            return loss + F.cross_entropy(out["quality_logits"], batch.quality)
        with torch.no_grad():
            teacher = gated(x)
        quality, _ = quality_distillation_loss(teacher["logits"], out["quality_logits"], teacher["feature"],
                                               out["quality_feature"], batch.quality)
        return loss + quality

    return tag_loss if phase == "tag" else category_loss


def train_student(student: Student, clips: ClipSet, budget: Budget, seed: int, gated: GatedQualityTeachers | None,
                  alternate: bool = True, use_teacher_tags: bool = True) -> dict[str, list[float]]:
    """Alternate whole tag and category epochs until the category loss converges."""
    optimizer = torch.optim.Adam(student.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(budget.student_epochs, 1))
    generator = torch.Generator().manual_seed(seed)
    rule = Convergence(patience=budget.patience, max_rounds=budget.student_epochs // (2 if alternate else 1))
    history: dict[str, list[float]] = {"tag": [], "category": []}
    for epoch in tqdm(range(budget.student_epochs), desc="student", unit="epoch"):
        phase = phase_of_epoch(epoch, alternate)
        parameters = trainable_for(student, phase)
        loss = run_epoch(student, parameters, optimizer, clips, student_batch_loss(student, phase, gated, use_teacher_tags),
                         budget, generator, f"student {phase} {epoch}", budget.student_frames)
        schedule.step()
        history[phase].append(loss)
        if phase == "category" and rule.update(loss):
            break
    return history
