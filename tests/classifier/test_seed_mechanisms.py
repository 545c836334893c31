"""The label-teacher (000) and quality-distillation (003) mechanisms as their documents describe them."""

import numpy as np
import pytest
import torch

from tests.classifier.conftest import CATEGORIES, GRADES, TAGS, tiny_run
from trainer.classifier.nets import (
    FrameQualityTeacher,
    GatedQualityTeachers,
    Preprocess,
    SpatioTemporalQualityTeacher,
    Student,
)
from trainer.classifier.schedule import TRAINED_BY_PHASE, phases_for
from trainer.classifier.selection import CandidateReport, SelectionRule, choose, paired_standard_error
from trainer.classifier.stages import round_sample, train_student
from trainer.classifier.train import student_tag_targets
from trainer.common import Convergence


def test_hard_targets_are_the_teacher_thresholded_at_one_half():
    probs = np.array([[0.8, 0.1, 0.6, 0.5, 0.51]], np.float32)
    assert student_tag_targets(probs, "hard").tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0]]
    assert student_tag_targets(probs, "soft") is probs


def test_training_stops_when_the_loss_changes_less_than_the_change_threshold():
    rule = Convergence(min_change=0.005, patience=10, max_rounds=50)
    assert [rule.update(x) for x in (1.0, 0.6, 0.3, 0.297)] == [False, False, False, True]
    assert Convergence(threshold=0.01, patience=10).update(0.009)  # the loss under the threshold
    assert not Convergence(patience=10).update(0.5)


def test_each_round_draws_its_own_random_share_the_same_on_every_rank(tiny_clips):
    first = round_sample(tiny_clips, 0.5, seed=0, stage="student", epoch=0)
    again = round_sample(tiny_clips, 0.5, seed=0, stage="student", epoch=0)
    later = [round_sample(tiny_clips, 0.5, seed=0, stage="student", epoch=e) for e in range(1, 6)]
    assert len(first) == 6 and first.rows.tolist() == again.rows.tolist()
    assert any(clips.rows.tolist() != first.rows.tolist() for clips in later)
    assert round_sample(tiny_clips, 1.0, 0, "student", 0) is tiny_clips


def _teachers():
    return [FrameQualityTeacher(GRADES, 8, widths=(4, 8)), SpatioTemporalQualityTeacher(GRADES, 8, widths=(4, 6))]


def test_the_gate_reads_each_teachers_initial_feature_not_the_projected_one():
    torch.manual_seed(0)
    frames = Preprocess()(torch.randint(0, 256, (3, 8, 16, 16, 3), dtype=torch.uint8))
    gated = GatedQualityTeachers(_teachers(), GRADES, feature_size=8, gate_input="initial").eval()
    assert [gate[0].in_features for gate in gated.gate] == [8, 6]  # each teacher's own initial width
    before = gated(frames)
    with torch.no_grad():  # change the projections only: the importances stay, the fused feature moves
        for teacher in gated.teachers:
            teacher.projection.weight.mul_(3.0)
    after = gated(frames)
    assert torch.allclose(before["weights"], after["weights"])
    assert not torch.allclose(before["feature"], after["feature"])
    projected = GatedQualityTeachers(_teachers(), GRADES, feature_size=8, gate_input="projected").eval()
    assert projected.gate[0].in_features == 16


@pytest.mark.parametrize("head_on, moves", [("projected", True), ("trunk", False)])
def test_the_student_classifies_its_projected_feature(head_on, moves):
    torch.manual_seed(0)
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8), quality_head_on=head_on).eval()
    frames = torch.randn(2, 8, 3, 16, 16)
    before = student(frames)["quality_logits"]
    with torch.no_grad():
        student.quality_projection.weight.mul_(-2.0)
    after = student(frames)["quality_logits"]
    assert (not torch.allclose(before, after)) == moves


def report(name, teacher, updated, probe):
    return CandidateReport(name, teacher_accuracy=teacher, updated_accuracy=updated, probe_accuracy=probe)


def test_selection_keeps_candidates_whose_student_beats_the_fine_tuned_teacher_then_top_k_then_best():
    reports = [report("a", 0.8, 0.80, 0.85),  # gain +0.05
               report("b", 0.7, 0.70, 0.80),  # gain +0.10
               report("c", 0.9, 0.90, 0.93),  # gain +0.03
               report("d", 0.9, 0.95, 0.90)]  # gain -0.05: not kept
    chosen = choose(reports, SelectionRule(top_k=2, teachers=2))
    # top 2 by gain are b and a; both chosen, ordered by the teacher's own accuracy
    assert [r.name for r in chosen] == ["a", "b"]
    assert not reports[2].chosen and "outside the top K" in reports[2].reason
    assert not reports[3].chosen and "does not beat" in reports[3].reason
    one = choose([report("a", 0.8, 0.80, 0.85), report("b", 0.7, 0.70, 0.80)], SelectionRule(top_k=2, teachers=1))
    assert [r.name for r in one] == ["a"]  # of the top K by gain, the best teacher alone


def test_selection_fills_and_says_so_when_too_few_pass_and_off_takes_every_candidate():
    reports = [report("a", 0.9, 0.95, 0.90), report("b", 0.9, 0.95, 0.80), report("c", 0.9, 0.95, 0.96)]
    chosen = choose(reports, SelectionRule(top_k=3, teachers=2))
    assert [r.name for r in chosen] == ["c", "a"]
    assert "kept" in chosen[0].reason and chosen[1].reason.startswith("filled")
    # none passes: the fill takes the better teachers, not the ones whose students fall least short
    none_pass = [report("chance", 0.3, 0.31, 0.30), report("good", 0.6, 0.62, 0.40), report("fair", 0.5, 0.5, 0.45)]
    assert [r.name for r in choose(none_pass, SelectionRule(top_k=3, teachers=2))] == ["good", "fair"]
    everyone = choose([report("a", 0.9, 0.9, 0.1), report("b", 0.9, 0.9, 0.1)], SelectionRule(enabled=False))
    assert len(everyone) == 2 and all("selection off" in r.reason for r in everyone)


def test_claim_8_needs_a_gain_beyond_the_noise_of_the_paired_comparison():
    # 120 validation clips; the probe gets 4 clips right the updated teacher misses, and 1 the other way
    probe_right = np.zeros(120, bool)
    updated_right = np.zeros(120, bool)
    probe_right[:40], updated_right[:37] = True, True
    probe_right[40:41] = False
    updated_right[40] = True
    se = paired_standard_error(probe_right, updated_right)
    assert se == round(np.sqrt(4) / 120, 4)  # 3 + 1 discordant clips
    noisy = CandidateReport("noisy", 0.3, 0.3167, 0.3333, gain_se=se, margin_z=1.0)
    assert noisy.gain == 0.0166 and noisy.gain < noisy.margin and not noisy.distillation_helps
    assert CandidateReport("bare", 0.3, 0.3167, 0.3333, gain_se=se, margin_z=0.0).distillation_helps
    clear = CandidateReport("clear", 0.3, 0.30, 0.45, gain_se=se, margin_z=1.0)
    assert clear.distillation_helps
    chosen = choose([noisy, clear], SelectionRule(top_k=3, teachers=1))
    assert [r.name for r in chosen] == ["clear"] and "margin" in noisy.reason


def snapshot(student):
    return {name: [p.detach().clone() for p in child.parameters()] for name, child in student.named_children()}


def test_a_joint_epoch_trains_tags_and_category_together(tiny_clips):
    assert phases_for(True, True, "joint") == ("joint",)
    student = Student(TAGS, CATEGORIES, GRADES, feature_size=8, widths=(4, 8))
    before = snapshot(student)
    history = train_student(student, tiny_clips, tiny_run(batch_size=4, student_epochs=1), gated=None,
                            phases=("joint",))
    moved = {n for n in before if any(not torch.equal(a, b) for a, b in zip(before[n], snapshot(student)[n]))}
    assert list(history) == ["joint"] and moved == set(TRAINED_BY_PHASE["joint"])
