import torch

from tests.classifier.conftest import CATEGORIES, GRADES, TAGS
from trainer.classifier.nets import (
    FrameQualityTeacher,
    GatedQualityTeachers,
    SpatioTemporalQualityTeacher,
    Student,
)
from trainer.classifier.schedule import TRAINED_BY_PHASE, phase_of_epoch
from trainer.classifier.stages import Budget, train_student


def snapshot(student: Student) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in child.parameters()] for name, child in student.named_children()}


def changed_parts(before: dict, after: dict) -> set[str]:
    return {name for name in before if any(not torch.equal(a, b) for a, b in zip(before[name], after[name]))}


def test_phases_alternate_whole_epochs():
    assert [phase_of_epoch(e) for e in range(4)] == ["tag", "category", "tag", "category"]
    assert {phase_of_epoch(e, alternate=False) for e in range(4)} == {"category"}


def test_tag_epoch_moves_backbone_and_tag_head_only(tiny_clips):
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    before = snapshot(student)
    train_student(student, tiny_clips, Budget(batch_size=4, student_epochs=1), seed=0, gated=None)
    assert changed_parts(before, snapshot(student)) == set(TRAINED_BY_PHASE["tag"])


def test_category_epoch_moves_backbone_and_category_quality_heads_only(tiny_clips):
    # Given a student after one tag epoch
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    train_student(student, tiny_clips, Budget(batch_size=4, student_epochs=1), seed=0, gated=None)
    before = snapshot(student)
    gated = GatedQualityTeachers([FrameQualityTeacher(GRADES, 8, widths=(4, 8)),
                                  SpatioTemporalQualityTeacher(GRADES, 8, widths=(4, 8))], GRADES, 8).eval()
    teacher_before = [p.detach().clone() for p in gated.parameters()]
    # When one category epoch runs (the same phase an alternating run uses on odd epochs)
    train_student(student, tiny_clips, Budget(batch_size=4, student_epochs=1), seed=0, gated=gated, alternate=False)
    # Then the tag head and the frozen quality teachers did not move
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, gated.parameters()))
    assert changed_parts(before, snapshot(student)) == set(TRAINED_BY_PHASE["category"])
