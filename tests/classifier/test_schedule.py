import pytest
import torch

from tests.classifier.conftest import CATEGORIES, GRADES, TAGS, tiny_run
from trainer.classifier.nets import (
    FrameQualityTeacher,
    GatedQualityTeachers,
    SpatioTemporalQualityTeacher,
    Student,
)
from trainer.classifier.schedule import TRAINED_BY_PHASE, phase_of_epoch, phases_for
from trainer.classifier.stages import train_student


def snapshot(student: Student) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in child.parameters()] for name, child in student.named_children()}


def changed_parts(before: dict, after: dict) -> set[str]:
    return {name for name in before if any(not torch.equal(a, b) for a, b in zip(before[name], after[name]))}


def test_phases_alternate_whole_epochs():
    assert [phase_of_epoch(e) for e in range(4)] == ["tag", "category", "tag", "category"]
    assert {phase_of_epoch(e, ("category",)) for e in range(4)} == {"category"}


def test_phases_follow_what_the_dataset_labels():
    assert phases_for(has_tags=True, has_category_or_quality=True) == ("tag", "category")
    assert phases_for(has_tags=False, has_category_or_quality=True) == ("category",)  # no tags: no tag epochs
    assert phases_for(has_tags=True, has_category_or_quality=False) == ("tag",)
    assert phases_for(True, True, schedule="category-only") == ("category",)


def test_tag_epoch_moves_backbone_and_tag_head_only(tiny_clips):
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    before = snapshot(student)
    train_student(student, tiny_clips, tiny_run(batch_size=4, student_epochs=1), gated=None)
    assert changed_parts(before, snapshot(student)) == set(TRAINED_BY_PHASE["tag"])


def test_category_epoch_moves_backbone_and_category_quality_heads_only(tiny_clips):
    # Given a student after one tag epoch
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    train_student(student, tiny_clips, tiny_run(batch_size=4, student_epochs=1), gated=None)
    before = snapshot(student)
    gated = GatedQualityTeachers([FrameQualityTeacher(GRADES, 8, widths=(4, 8)),
                                  SpatioTemporalQualityTeacher(GRADES, 8, widths=(4, 8))], GRADES, 8).eval()
    teacher_before = [p.detach().clone() for p in gated.parameters()]
    # When one category epoch runs (the same phase an alternating run uses on odd epochs)
    train_student(student, tiny_clips, tiny_run(batch_size=4, student_epochs=1), gated=gated, phases=("category",))
    # Then the tag head and the frozen quality teachers did not move
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, gated.parameters()))
    assert changed_parts(before, snapshot(student)) == set(TRAINED_BY_PHASE["category"])


@pytest.mark.parametrize("head_on", ["projected", "trunk"])
def test_a_student_without_tags_has_no_tag_head_and_trains_category_epochs_only(tiny_clips, head_on):
    # Given a dataset with categories and grades but no tags
    student = Student(0, CATEGORIES, GRADES, feature_size=8, widths=(4, 8), quality_head_on=head_on)
    assert not hasattr(student, "tag_head")
    before = snapshot(student)
    # When the student trains on the phases such a dataset gets
    history = train_student(student, tiny_clips, tiny_run(batch_size=4, student_epochs=2), gated=None,
                            phases=phases_for(False, True), use_teacher_tags=False)
    # Then every epoch was a category epoch and every part it has moved; with the head on the trunk
    # feature, the projection into the quality teachers' space learns only from a distillation target,
    # and there is none without teachers
    assert list(history) == ["category"] and len(history["category"]) == 2
    unmoved = set() if head_on == "projected" else {"quality_projection"}
    assert changed_parts(before, snapshot(student)) == set(before) - unmoved
