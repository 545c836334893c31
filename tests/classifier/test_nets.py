import torch

from tests.classifier.conftest import CATEGORIES, GRADES, TAGS
from trainer.classifier.nets import (
    FrameQualityTeacher,
    GatedQualityTeachers,
    LabelTeacher,
    Preprocess,
    SpatioTemporalQualityTeacher,
    Student,
    parameter_count,
)


def test_gate_weights_are_one_per_teacher_and_sum_to_one_per_sample():
    teachers = [FrameQualityTeacher(GRADES, 8, widths=(4, 8)), SpatioTemporalQualityTeacher(GRADES, 8, widths=(4, 8))]
    gated = GatedQualityTeachers(teachers, GRADES, feature_size=8)
    frames = Preprocess()(torch.randint(0, 256, (5, 8, 16, 16, 3), dtype=torch.uint8))
    out = gated(frames)
    assert out["weights"].shape == (5, 2)
    assert torch.allclose(out["weights"].sum(dim=1), torch.ones(5), atol=1e-6)
    assert bool((out["weights"] > 0).all())
    assert out["feature"].shape == (5, 8) and out["logits"].shape == (5, GRADES)


def test_fused_feature_is_the_weighted_sum_of_teacher_features():
    teachers = [FrameQualityTeacher(GRADES, 8, widths=(4, 8)), SpatioTemporalQualityTeacher(GRADES, 8, widths=(4, 8))]
    gated = GatedQualityTeachers(teachers, GRADES, feature_size=8).eval()
    frames = Preprocess()(torch.randint(0, 256, (3, 8, 16, 16, 3), dtype=torch.uint8))
    out = gated(frames)
    features = torch.stack([t.feature(frames) for t in teachers], dim=1)
    assert torch.allclose(out["feature"], (out["weights"].unsqueeze(2) * features).sum(1), atol=1e-5)


def test_student_outputs_and_size_against_the_label_teacher():
    student, teacher = Student(TAGS, CATEGORIES, GRADES, feature_size=64), LabelTeacher(TAGS)
    out = student(torch.randn(2, 8, 3, 64, 64))
    assert out["frame_tag_logits"].shape == (2, 8, TAGS)
    assert torch.equal(out["tag_logits"], out["frame_tag_logits"].amax(dim=1))
    assert out["category_logits"].shape == (2, CATEGORIES) and out["quality_feature"].shape == (2, 64)
    assert parameter_count(student) * 4 <= parameter_count(teacher)


def test_preprocess_casts_normalises_and_moves_channels_first():
    frames = torch.zeros(1, 2, 4, 4, 3, dtype=torch.uint8)
    frames[..., 0] = 255
    out = Preprocess()(frames)
    assert out.shape == (1, 2, 3, 4, 4) and out.dtype == torch.float32
    assert out[0, 0, 0, 0, 0] > 2 and out[0, 0, 1, 0, 0] < -1
