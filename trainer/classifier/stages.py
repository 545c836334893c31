"""The training stages: label teacher, quality teachers (+ selection and gate), alternating student.

Every stage reads its clips through the DataLoader (``trainer.datasets.clips``), runs through
:func:`trainer.loop.run_stage` (a checkpoint per epoch, resumable, the same on every torchrun rank)
and masks the targets a clip does not carry (-1 class, no tags), so a dataset may label only some
clips for some heads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainer.checkpoint import Checkpoints
from trainer.classifier.losses import masked_cross_entropy, quality_distillation_loss, tag_distillation_loss
from trainer.classifier.nets import GatedQualityTeachers, LabelTeacher, Preprocess, Student
from trainer.classifier.schedule import phase_of_epoch, trainable_for
from trainer.common import Convergence
from trainer.datasets.clips import ClipSet, clip_loader, rank_positions, to_device
from trainer.distributed import TrainContext, unwrap
from trainer.loop import convergence_stop, epoch_generator, run_stage

PREPROCESS = Preprocess()
Batch = dict[str, torch.Tensor]
BatchLoss = Callable[[nn.Module, torch.Tensor, Batch], torch.Tensor]


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
    #: The absolute stopping rules of the label-teacher document (¶48, ¶55): a stage also stops when its
    #: loss is at most ``stop_loss`` or changed by at most ``stop_change`` since the previous round
    #: (0 / None: off; the classifier trainer turns them on).
    stop_loss: float = 0.0
    stop_change: float | None = None
    #: Each round (epoch) trains on a fresh random ``subsample`` share of the stage's clips (¶78–79; 1 = all).
    subsample: float = 1.0
    top_k: int = 2
    flip: bool = True
    #: Frames of each clip the student trains on (a random, time-ordered subset; it serves all 8):
    #: half the CPU per epoch for a student twice as wide, and a temporal augmentation.
    student_frames: int | None = 4


@dataclass
class Run:
    """What every stage of one training run shares: ranks/device, checkpoints, seed and budget."""

    ctx: TrainContext
    checkpoints: Checkpoints
    seed: int
    budget: Budget


def prepare(raw: torch.Tensor) -> torch.Tensor:
    """Network input from loader output: uint8 frames are scaled in-graph style; features pass as float."""
    return PREPROCESS(raw) if raw.dtype == torch.uint8 else raw.float()


def random_flips(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each clip left-right and/or top-bottom at random (``[B, T, C, H, W]``).

    Every label of the world (tags, category, quality) is unchanged by a mirror, and the doubled
    variety keeps the networks from memorising the noisy training tags.
    """
    horizontal, vertical = (torch.rand(2, frames.shape[0], generator=generator) < 0.5).to(frames.device)
    frames = torch.where(horizontal[:, None, None, None, None], frames.flip(-1), frames)
    return torch.where(vertical[:, None, None, None, None], frames.flip(-2), frames)


def random_frames(frames: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` of the T frames (``[B, T, ...]``), picked at random and kept in time order."""
    picked = torch.randperm(frames.shape[1], generator=generator)[:count].sort().values
    return frames[:, picked.to(frames.device)]


def round_sample(clips: ClipSet, share: float, seed: int, stage: str, epoch: int) -> ClipSet:
    """A random ``share`` of ``clips`` for one round, the same on every rank (all of them at share 1)."""
    if share >= 1.0 or len(clips) < 2:
        return clips
    generator = epoch_generator(seed, f"{stage}/subsample", epoch, 0)
    count = max(1, round(share * len(clips)))
    return clips.subset(torch.randperm(len(clips), generator=generator)[:count].sort().values.numpy())


def stopping_rule(budget: Budget, max_rounds: int) -> Convergence:
    """Plateau, absolute threshold, absolute change, or the round cap: whichever comes first."""
    return Convergence(threshold=budget.stop_loss, min_change=budget.stop_change, patience=budget.patience,
                       max_rounds=max_rounds)


def run_epoch(model: nn.Module, parameters: list[nn.Parameter], optimizer: torch.optim.Optimizer, clips: ClipSet,
              batch_loss: BatchLoss, run: Run, stage: str, epoch: int, frames_per_clip: int | None = None) -> float:
    """One pass over this rank's share of ``clips``; returns the mean loss. Only ``parameters`` learn.

    ``frames_per_clip`` trains on a random subset of each clip's frames (a network that pools
    per-frame outputs over time serves all of them). Mirrors apply to pixels, not to features.
    """
    ctx, budget = run.ctx, run.budget
    generator = epoch_generator(run.seed, stage, epoch, ctx.rank)
    clips = round_sample(clips, budget.subsample, run.seed, stage, epoch)
    wrapped = ctx.wrap(model)
    wrapped.train()
    losses = []
    for batch in clip_loader(clips, budget.batch_size, ctx, run.seed, epoch):
        batch = to_device(batch, ctx)
        raw = batch["inputs"]
        if frames_per_clip is not None and frames_per_clip < raw.shape[1]:
            raw = random_frames(raw, frames_per_clip, generator)
        x = prepare(raw)
        if budget.flip and raw.dtype == torch.uint8:
            x = random_flips(x, generator)
        loss = batch_loss(wrapped, x, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else 0.0


def fit(name: str, model: nn.Module, clips: ClipSet, batch_loss: BatchLoss, run: Run, epochs: int) -> list[float]:
    """Train every trainable parameter of ``model`` until the loss converges (threshold / plateau / cap)."""
    model.to(run.ctx.device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=run.budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
    rule = stopping_rule(run.budget, epochs)

    def epoch_fn(epoch: int) -> dict:
        loss = run_epoch(model, parameters, optimizer, clips, batch_loss, run, name, epoch)
        schedule.step()
        return {"loss": round(loss, 5)}

    history = run_stage(name, {"model": model, "optimizer": optimizer, "schedule": schedule, "rule": rule},
                        epochs, epoch_fn, run.ctx, run.checkpoints, convergence_stop(rule))
    return [record["loss"] for record in history]


@torch.no_grad()
def predict(model: nn.Module, clips: ClipSet, head: Callable[[nn.Module, torch.Tensor], torch.Tensor],
            ctx: TrainContext, batch_size: int = 64) -> np.ndarray:
    """``head(model, inputs)`` for every clip (each rank computes its share; all ranks get all rows)."""
    model.eval()
    positions = rank_positions(len(clips), ctx)
    share = clips.subset(positions)
    parts = []
    for batch in clip_loader(share, batch_size, TrainContext(ctx.device, loader_workers=ctx.loader_workers),
                             shuffle=False):
        parts.append(head(model, prepare(batch["inputs"].to(ctx.device))).float().cpu().numpy())
    values = np.concatenate(parts) if parts else np.empty((0,))
    return ctx.gather_rows(positions, values, len(clips))


def train_label_teacher(clips: ClipSet, run: Run, features_dim: int | None) -> tuple[LabelTeacher, list[float]]:
    """Per-tag BCE against the (noisy) training tags, on the clips that carry tags."""
    tagged = clips.where(clips.targets["has_tags"])
    teacher = LabelTeacher(tags=clips.targets["tags"].shape[1], features_dim=features_dim)
    history = fit("label_teacher", teacher, tagged,
                  lambda m, x, b: F.binary_cross_entropy_with_logits(m(x), b["tags"]), run, run.budget.teacher_epochs)
    return teacher, history


def train_quality_teacher(teacher: nn.Module, clips: ClipSet, run: Run, name: str) -> list[float]:
    return fit(f"quality/{name}", teacher, clips, lambda m, x, b: F.cross_entropy(m(x), b["quality"]), run,
               run.budget.quality_epochs)


def train_gate(gated: GatedQualityTeachers, clips: ClipSet, run: Run) -> list[float]:
    """Learn the gate and fused head on frozen teachers."""
    gated.teachers.requires_grad_(False)
    return fit("quality_gate", gated, clips, lambda m, x, b: F.cross_entropy(m(x)["logits"], b["quality"]), run,
               run.budget.gate_epochs)


def student_batch_loss(phase: str, gated: GatedQualityTeachers | None, use_teacher_tags: bool) -> BatchLoss:
    """The loss of one batch in a tag epoch or in a category epoch (absent targets masked out)."""
    def tag_loss(student: nn.Module, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        if use_teacher_tags:
            return tag_distillation_loss(student(x)["tag_logits"], batch["teacher_tags"])
        mask = batch["has_tags"]
        logits = student(x)["tag_logits"]
        return tag_distillation_loss(logits[mask], batch["tags"][mask]) if mask.any() else logits.sum() * 0.0

    def category_loss(student: nn.Module, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        out = student(x)
        loss = masked_cross_entropy(out["category_logits"], batch["category"]) if "category_logits" in out else 0.0
        if "quality_logits" not in out:
            return loss
        if gated is None:
            return loss + masked_cross_entropy(out["quality_logits"], batch["quality"])
        graded = batch["quality"] >= 0
        if not graded.any():
            return loss + out["quality_feature"].sum() * 0.0
        with torch.no_grad():
            teacher = gated(x[graded])
        quality, _ = quality_distillation_loss(teacher["logits"], out["quality_logits"][graded], teacher["feature"],
                                               out["quality_feature"][graded], batch["quality"][graded])
        return loss + quality

    if phase == "joint":
        return lambda student, x, batch: tag_loss(student, x, batch) + category_loss(student, x, batch)
    return tag_loss if phase == "tag" else category_loss


def train_student(student: Student, clips: ClipSet, run: Run, gated: GatedQualityTeachers | None,
                  phases: tuple[str, ...] = ("tag", "category"), use_teacher_tags: bool = True) -> dict[str, list[float]]:
    """Cycle whole epochs through ``phases`` until the category loss (else the tag loss) converges.

    Tag epochs read the clips with tag targets (all clips when the label teacher labelled them);
    category epochs the clips with a category or a quality grade.
    """
    student.to(run.ctx.device)
    budget = run.budget
    optimizer = torch.optim.Adam(student.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(budget.student_epochs, 1))
    rule = stopping_rule(budget, budget.student_epochs // len(phases))
    judged = "category" if "category" in phases else phases[0]
    subsets = {"tag": clips if use_teacher_tags else clips.where(clips.targets["has_tags"]),
               "category": clips.where((clips.targets["category"] >= 0) | (clips.targets["quality"] >= 0)),
               "joint": clips}
    if gated is not None:
        gated.to(run.ctx.device)

    def epoch_fn(epoch: int) -> dict:
        phase = phase_of_epoch(epoch, phases)
        parameters = trainable_for(student, phase)
        loss = run_epoch(student, parameters, optimizer, subsets[phase], student_batch_loss(phase, gated, use_teacher_tags),
                         run, "student", epoch, budget.student_frames)
        schedule.step()
        return {"phase": phase, "loss": round(loss, 5)}

    records = run_stage("student", {"model": student, "optimizer": optimizer, "schedule": schedule, "rule": rule},
                        budget.student_epochs, epoch_fn, run.ctx, run.checkpoints,
                        lambda r: r["phase"] == judged and rule.update(r["loss"]))
    history: dict[str, list[float]] = {phase: [] for phase in phases}
    for record in records:
        history[record["phase"]].append(record["loss"])
    unwrap(student).requires_grad_(True)
    return history
