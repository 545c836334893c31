"""Quality-teacher selection as the quality-distillation document's claims 8–9 describe it.

The library holds structurally different quality teachers. Each candidate is first trained on a
*pre-training* share of the training clips (the document's pre-trained model). Then, on the
remaining *probe* share, two things get the same budget (``probe_epochs`` epochs, same clips):

- the **updated model**: the candidate itself, trained further (fine-tuned) on the probe share;
- the **probe student**: the real student architecture (``probe_factory``), trained from scratch on the
  probe share with the distillation loss from the frozen candidate.

Both are scored on the validation clips. A candidate is kept when its student beats its updated model
(claim 8; ``gain`` = student accuracy − updated accuracy) by more than the noise of that comparison:
``margin_z`` standard errors of the paired difference, sqrt(b + c) / n, where b and c count the
validation clips only one of the two gets right. On 120 clips a gain of one to four clips is within
that noise; without the margin claim 8 kept teachers at chance whose probes "won" by such gains
(docs/quality.md §4). ``margin_z = 0`` is the document's bare "better than". Claim 9: the top K kept candidates by
gain, and of those the best by a second criterion. The document's text breaks off before it defines
that criterion; here it is the updated model's own validation accuracy (how good the teacher is
alone), and the best ``teachers`` of the K (the gate needs at least two) become the gated teachers.
When fewer than ``teachers`` candidates are kept, the rest are filled by the fine-tuned teacher's own
accuracy (the second criterion; a gain below zero only measures a shortfall) and the report says so.
The probe is fair by construction: the student the engine actually trains, the same clips and epochs
as the teacher's fine-tuning, and a loss it can learn from (labels + teacher prediction + feature).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainer.classifier.losses import quality_distillation_loss
from trainer.classifier.nets import (
    FEATURE_WIDTHS,
    FrameQualityTeacher,
    SpatioTemporalQualityTeacher,
    Student,
    TemporalFeatureQualityTeacher,
)
from trainer.classifier.stages import Run, fit, predict, train_quality_teacher
from trainer.datasets.clips import ClipSet

FEATURE_SIZE = 64
#: Share of the training clips the candidates are pre-trained on; the rest is the probe share.
PRETRAIN_SHARE = 0.7

ProbeFactory = Callable[[], nn.Module]


def candidate_library(grades: int, features_dim: int | None = None) -> dict[str, nn.Module]:
    """Structurally different quality teachers, all projecting to FEATURE_SIZE."""
    if features_dim is not None:
        return {"feature_mlp": FrameQualityTeacher(grades, FEATURE_SIZE, FEATURE_WIDTHS["quality"], features_dim),
                "feature_temporal": TemporalFeatureQualityTeacher(grades, FEATURE_SIZE, features_dim),
                "feature_mlp_narrow": FrameQualityTeacher(grades, FEATURE_SIZE, FEATURE_WIDTHS["quality_narrow"],
                                                          features_dim)}
    return {"frame_cnn": FrameQualityTeacher(grades, FEATURE_SIZE),
            "spatiotemporal_3d": SpatioTemporalQualityTeacher(grades, FEATURE_SIZE),
            "frame_cnn_narrow": FrameQualityTeacher(grades, FEATURE_SIZE, widths=(16, 24, 32))}


def candidate_stages(names) -> tuple[str, ...]:
    """The checkpointed stages :func:`select_teachers` trains for each candidate, whatever the rule then
    chooses (so rows that differ only in the rule or in how the chosen teachers are used can share them)."""
    return tuple(f"{kind}/{name}" for name in names for kind in ("quality", "probe", "updated"))


def classifier_probe(grades: int, features_dim: int | None) -> ProbeFactory:
    """The classifier student's own quality branch (no backbone or tag/category heads run)."""
    return lambda: Student(0, 0, grades, FEATURE_SIZE, features_dim=features_dim)


@dataclass(frozen=True)
class SelectionRule:
    enabled: bool = True  # off: every candidate of the library is a gated teacher
    top_k: int = 3  # claim 9's K
    teachers: int = 2  # how many of the K the gate combines
    probe_epochs: int | None = None  # default: the budget's quality_epochs
    margin_z: float = 1.0  # a kept candidate's gain exceeds this many standard errors of the paired difference


@dataclass
class CandidateReport:
    name: str
    teacher_accuracy: float  # the pre-trained candidate on the validation clips
    updated_accuracy: float  # the candidate after fine-tuning on the probe share
    probe_accuracy: float  # the student distilled from the candidate, same share and epochs
    gain_se: float = 0.0  # standard error of the paired difference probe − updated on the validation clips
    margin_z: float = 0.0  # the rule's margin, in standard errors
    chosen: bool = False
    reason: str = ""

    @property
    def gain(self) -> float:
        return round(self.probe_accuracy - self.updated_accuracy, 4)

    @property
    def margin(self) -> float:
        return round(self.margin_z * self.gain_se, 4)

    @property
    def distillation_helps(self) -> bool:
        return self.gain > self.margin

    def as_dict(self) -> dict:
        return {"name": self.name, "teacher_accuracy": self.teacher_accuracy, "updated_accuracy": self.updated_accuracy,
                "probe_accuracy": self.probe_accuracy, "gain": self.gain, "gain_se": self.gain_se,
                "margin": self.margin, "kept": self.distillation_helps, "chosen": self.chosen, "reason": self.reason}


class _Distilled(nn.Module):
    """The probe student and its frozen teacher as one module (so DDP sees one forward)."""

    def __init__(self, probe: nn.Module, teacher: nn.Module):
        super().__init__()
        self.probe, self.teacher = probe, teacher

    def forward(self, frames: torch.Tensor):
        out = self.probe(frames)
        with torch.no_grad():
            self.teacher.eval()
            target_feature = self.teacher.feature(frames)
            teacher_logits = self.teacher.head(torch.relu(target_feature))
        return out["quality_logits"], out["quality_feature"], teacher_logits, target_feature


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


def paired_standard_error(first_right: np.ndarray, second_right: np.ndarray) -> float:
    """Standard error of accuracy(first) − accuracy(second) on the same clips: sqrt(b + c) / n, where b
    and c count the clips exactly one of the two gets right (the clips both get right or wrong say
    nothing about which is better)."""
    discordant = int(np.count_nonzero(first_right != second_right))
    return round(float(np.sqrt(discordant) / max(1, len(first_right))), 4)


def _right(model: nn.Module, clips: ClipSet, run: Run, output=lambda m, x: m(x)) -> np.ndarray:
    return predict(model, clips, output, run.ctx).argmax(1) == clips.targets["quality"]


def probe_right(name: str, teacher: nn.Module, probe: nn.Module, train: ClipSet, val: ClipSet, run: Run,
                epochs: int) -> np.ndarray:
    """Per ``val`` clip, whether ``probe`` distilled from the frozen ``teacher`` on ``train`` for ``epochs``
    grades it right."""
    teacher.requires_grad_(False)
    pair = _Distilled(probe, teacher)

    def loss(model: nn.Module, x: torch.Tensor, batch) -> torch.Tensor:
        logits, feature, teacher_logits, target_feature = model(x)
        return quality_distillation_loss(teacher_logits, logits, target_feature, feature, batch["quality"])[0]

    fit(f"probe/{name}", pair, train, loss, run, epochs)
    teacher.requires_grad_(True)
    return _right(probe, val, run, lambda m, x: m(x)["quality_logits"])


def select_teachers(train: ClipSet, val: ClipSet, run: Run, grades: int, features_dim: int | None = None,
                    probe_factory: ProbeFactory | None = None, rule: SelectionRule = SelectionRule(),
                    candidates: dict[str, nn.Module] | None = None) -> tuple[list[nn.Module], list[CandidateReport]]:
    """Pre-train, fine-tune and probe every candidate (default: :func:`candidate_library`); return the
    chosen teachers and a report per candidate."""
    probe_factory = probe_factory or classifier_probe(grades, features_dim)
    epochs = rule.probe_epochs or run.budget.quality_epochs
    order = np.random.default_rng(run.seed + 19).permutation(len(train))
    cut = int(PRETRAIN_SHARE * len(train))
    pretrain, probe_share = train.subset(order[:cut]), train.subset(order[cut:])
    reports, updated = [], {}
    for name, teacher in (candidates or candidate_library(grades, features_dim)).items():
        train_quality_teacher(teacher, pretrain, run, name)
        pretrained_right = _right(teacher, val, run)
        student_right = probe_right(name, teacher, probe_factory(), probe_share, val, run, epochs)
        refined = copy.deepcopy(teacher)
        fit(f"updated/{name}", refined, probe_share,
            lambda m, x, b: nn.functional.cross_entropy(m(x), b["quality"]), run, epochs)
        refined_right = _right(refined, val, run)
        reports.append(CandidateReport(name, _share(pretrained_right), _share(refined_right), _share(student_right),
                                       gain_se=paired_standard_error(student_right, refined_right),
                                       margin_z=rule.margin_z))
        updated[name] = refined
    chosen = choose(reports, rule)
    for report in reports:
        run.ctx.log(f"quality teacher {report.name}: teacher {report.teacher_accuracy:.3f}, updated "
                    f"{report.updated_accuracy:.3f}, probe student {report.probe_accuracy:.3f} (gain {report.gain:+.3f}, "
                    f"margin {report.margin:.3f})"
                    f" → {'chosen' if report.chosen else 'not chosen'}: {report.reason}")
    return [updated[r.name] for r in chosen], reports


def _share(right: np.ndarray) -> float:
    return round(float(right.mean()) if len(right) else 0.0, 4)


def choose(reports: list[CandidateReport], rule: SelectionRule) -> list[CandidateReport]:
    """Claims 8–9 on measured reports (marks each report chosen or not, with the reason)."""
    if not rule.enabled:
        for report in reports:
            report.chosen, report.reason = True, "selection off: every candidate is a teacher"
        return list(reports)
    by_gain = sorted(reports, key=lambda r: r.gain, reverse=True)
    kept = [r for r in by_gain if r.distillation_helps]
    top = kept[:rule.top_k]
    chosen = sorted(top, key=lambda r: r.updated_accuracy, reverse=True)[:rule.teachers]
    for report in chosen:
        report.chosen = True
        report.reason = (f"kept (student beats the fine-tuned teacher by {report.gain:+.3f}, more than the margin "
                         f"{report.margin:.3f}), in the top {rule.top_k} "
                         f"by gain, among the best {rule.teachers} of those by the teacher's own accuracy")
    # A negative gain only says how far a student falls short of its teacher, so a teacher at chance
    # "loses" least; among the candidates claim 8 rejected, the better teacher is the better fill.
    rest = sorted((r for r in reports if not r.chosen), key=lambda r: (r.updated_accuracy, r.gain), reverse=True)
    filled = rest[:max(0, rule.teachers - len(chosen))]
    for report in filled:
        report.chosen = True
        report.reason = (f"filled: only {len(chosen)} candidate(s) passed claim 8 and the gate needs "
                         f"{rule.teachers}; next best by the teacher's own accuracy ({report.updated_accuracy:.3f})")
    for report in reports:
        if not report.chosen:
            report.reason = (f"not kept: its student does not beat the fine-tuned teacher by more than the margin "
                             f"{report.margin:.3f} (gain {report.gain:+.3f})" if not report.distillation_helps
                             else "kept, but outside the top K by gain or the best by the teacher's own accuracy")
    return chosen + filled
