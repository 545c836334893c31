"""Quality-teacher selection: keep candidates whose distilled student beats the teacher alone, then the best K.

The "student" here is a cheap probe (a tiny per-frame CNN trained for a couple of epochs with the
quality distillation loss from that one teacher), so the library costs seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainer.classifier.clips import ClipSet
from trainer.classifier.losses import quality_distillation_loss
from trainer.classifier.nets import FrameQualityTeacher, SpatioTemporalQualityTeacher
from trainer.classifier.stages import Budget, fit, predict, train_quality_teacher

FEATURE_SIZE = 64


def candidate_library(grades: int) -> dict[str, nn.Module]:
    """Structurally different quality teachers, all projecting to FEATURE_SIZE."""
    return {"frame_cnn": FrameQualityTeacher(grades, FEATURE_SIZE),
            "spatiotemporal_3d": SpatioTemporalQualityTeacher(grades, FEATURE_SIZE),
            "frame_cnn_narrow": FrameQualityTeacher(grades, FEATURE_SIZE, widths=(16, 24, 32))}


@dataclass
class CandidateReport:
    name: str
    teacher_accuracy: float
    probe_accuracy: float

    @property
    def distillation_helps(self) -> bool:
        return self.probe_accuracy > self.teacher_accuracy


class _ProbeStudent(nn.Module):
    def __init__(self, grades: int):
        super().__init__()
        self.teacher_like = FrameQualityTeacher(grades, FEATURE_SIZE, widths=(8, 16, 24))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.teacher_like.feature(frames)
        return self.teacher_like.head(torch.relu(feature)), feature


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def probe_accuracy(teacher: nn.Module, train: ClipSet, val: ClipSet, budget: Budget, seed: int) -> float:
    probe = _ProbeStudent(int(train.quality.max()) + 1)
    teacher.requires_grad_(False)

    def loss(x: torch.Tensor, batch: ClipSet) -> torch.Tensor:
        logits, feature = probe(x)
        with torch.no_grad():
            teacher.eval()
            target_feature = teacher.feature(x)
            teacher_logits = teacher.head(torch.relu(target_feature))
        return quality_distillation_loss(teacher_logits, logits, target_feature, feature, batch.quality)[0]

    fit(probe, train, loss, budget, 1, seed, "probe")
    teacher.requires_grad_(True)
    return accuracy(predict(probe, val, lambda m, x: m(x)[0]), val.quality)


def select_teachers(train: ClipSet, val: ClipSet, budget: Budget, seed: int,
                    grades: int) -> tuple[list[nn.Module], list[CandidateReport]]:
    """Train every candidate, probe it, keep the helpful ones (all if none helps), return the best K."""
    reports, trained = [], {}
    for name, teacher in candidate_library(grades).items():
        train_quality_teacher(teacher, train, budget, seed, name)
        teacher_acc = accuracy(predict(teacher, val, lambda m, x: m(x)), val.quality)
        reports.append(CandidateReport(name, teacher_acc, probe_accuracy(teacher, train, val, budget, seed)))
        trained[name] = teacher
    helpful = [r for r in reports if r.distillation_helps] or reports
    best = sorted(helpful, key=lambda r: r.teacher_accuracy, reverse=True)[:budget.top_k]
    if len(best) < 2:  # the gate needs structurally different teachers to choose between
        best = sorted(reports, key=lambda r: r.teacher_accuracy, reverse=True)[:max(2, budget.top_k)]
    return [trained[r.name] for r in best], reports
