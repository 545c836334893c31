import pytest
import torch
from torch.nn import functional as F

from trainer.classifier.losses import quality_distillation_loss, tag_distillation_loss
from trainer.common import Convergence


def test_quality_loss_is_teacher_ce_plus_student_ce_plus_feature_distance():
    torch.manual_seed(0)
    teacher_logits, student_logits = torch.randn(6, 4), torch.randn(6, 4)
    teacher_feature, student_feature = torch.randn(6, 8), torch.randn(6, 8, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    total, parts = quality_distillation_loss(teacher_logits, student_logits, teacher_feature, student_feature, labels)
    expected = (F.cross_entropy(teacher_logits, labels) + F.cross_entropy(student_logits, labels)
                + F.mse_loss(student_feature, teacher_feature))
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert sum(parts.values()) == pytest.approx(float(total), rel=1e-5)


def test_distance_term_pulls_the_student_not_the_teacher():
    teacher_feature = torch.randn(4, 8, requires_grad=True)
    student_feature = torch.randn(4, 8, requires_grad=True)
    total, _ = quality_distillation_loss(torch.randn(4, 3), torch.randn(4, 3), teacher_feature, student_feature,
                                         torch.tensor([0, 1, 2, 0]))
    total.backward()
    assert teacher_feature.grad is None and student_feature.grad is not None


def test_tag_loss_is_zero_gradient_when_student_matches_teacher():
    logits = torch.tensor([[2.0, -1.0]], requires_grad=True)
    tag_distillation_loss(logits, torch.sigmoid(logits).detach()).backward()
    assert torch.allclose(logits.grad, torch.zeros_like(logits), atol=1e-7)


def test_convergence_stops_on_threshold_plateau_or_cap():
    assert Convergence(threshold=0.1).update(0.05)
    plateau = Convergence(patience=2, min_delta=0.01)
    assert [plateau.update(x) for x in (1.0, 0.5, 0.499, 0.498)] == [False, False, False, True]
    capped = Convergence(max_rounds=3)
    assert [capped.update(x) for x in (3.0, 2.0, 1.0)] == [False, False, True]
