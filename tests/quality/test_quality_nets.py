"""The fragment student's serving graph: preprocessing folded into the first convolution, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.classifier.nets import Preprocess
from trainer.export import check_parity, export_onnx
from trainer.quality.nets import FragmentQualityStudent, ServingQuality


def test_serving_graph_gives_the_trained_students_probabilities_on_raw_pixels():
    # Given a student whose batch norms have statistics of their own
    torch.manual_seed(0)
    student = FragmentQualityStudent(grades=4, feature_size=8)
    student.train()
    for _ in range(3):
        student(torch.randn(2, 2, 3, 64, 64) * 3 + 1)
    student.eval()
    fragments = torch.randint(0, 256, (3, 2, 64, 64, 3), dtype=torch.uint8)

    # When it serves raw uint8 fragments through the folded graph
    serving = ServingQuality(student)
    with torch.no_grad():
        served = serving(fragments)

    # Then it gives what the student gives on the preprocessed pixels, and the student is untouched
    with torch.no_grad():
        expected = torch.softmax(student(Preprocess()(fragments))["quality_logits"], dim=-1)
    torch.testing.assert_close(served, expected, atol=1e-5, rtol=1e-5)
    assert not torch.equal(serving.student.trunk[0].weight, student.trunk[0].weight)


def test_the_energy_trunks_serving_graph_gives_its_probabilities_on_raw_pixels():
    torch.manual_seed(1)
    student = FragmentQualityStudent(grades=4, feature_size=8, trunk="energy", grid=2, patch=16).eval()
    fragments = torch.randint(0, 256, (3, 3, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        served = ServingQuality(student)(fragments)
        expected = torch.softmax(student(Preprocess()(fragments))["quality_logits"], dim=-1)
    torch.testing.assert_close(served, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_the_energy_trunks_onnx_graph_serves_any_batch(tmp_path, pooling):
    # Given the energy student exported at batch 2 (3 frames of a 3x3 grid: 27 patches, odd on purpose)
    torch.manual_seed(2)
    serving = ServingQuality(FragmentQualityStudent(grades=4, feature_size=8, trunk="energy", grid=3, patch=8,
                                                    pooling=pooling).eval())
    rng = np.random.default_rng(0)
    path = export_onnx(serving, {"fragments": rng.integers(0, 256, (2, 3, 24, 24, 3), dtype=np.uint8)},
                       ["quality_probs"], tmp_path / "quality.onnx")

    # Then ONNX Runtime agrees with torch at batches it was not traced with
    for batch in (1, 5):
        assert check_parity(serving, path, {"fragments": rng.integers(0, 256, (batch, 3, 24, 24, 3), dtype=np.uint8)}) < 1e-4


def _mosaic(levels: torch.Tensor, patch: int) -> torch.Tensor:
    """``[T, G, G]`` grey levels → uint8 fragments ``[1, T, G*P, G*P, 3]``, each patch flat."""
    flat = levels.repeat_interleave(patch, dim=1).repeat_interleave(patch, dim=2)
    return flat[None, ..., None].expand(-1, -1, -1, -1, 3).to(torch.uint8)


def test_patch_energies_ignore_seams_and_brightness_and_see_grain():
    from trainer.quality.nets import PatchEnergy

    energy = PatchEnergy(grid=3, patch=16).eval()
    levels = torch.randint(0, 200, (1, 3, 3))  # neighbouring patches far apart: a seam everywhere
    flat = Preprocess()(_mosaic(levels, 16))[0]
    brighter = Preprocess()(_mosaic(levels + 40, 16))[0]
    grain = torch.randn(1, 3, 48, 48).mul(6 / 255 / 0.25).expand(-1, 3, -1, -1)
    with torch.no_grad():
        floor = energy(flat)
        torch.testing.assert_close(energy(brighter), floor, atol=0.05, rtol=0)  # float rounding near the floor
        assert floor.max() < -8  # no response at all: only the floor's log
        assert (energy(flat + grain) > floor + 5).all()


def test_a_repeated_frame_reads_as_no_change():
    from trainer.quality.nets import EnergyTrunk

    torch.manual_seed(2)
    trunk = EnergyTrunk(grid=2, patch=16).eval()
    frames = torch.randn(1, 3, 3, 32, 32)
    repeated = frames.clone()
    repeated[:, 2] = repeated[:, 1]
    with torch.no_grad():
        assert not torch.allclose(trunk(frames), trunk(repeated))


def test_attention_pooling_weighs_patches_by_what_they_show():
    from trainer.quality.nets import EnergyTrunk

    torch.manual_seed(3)
    mean = EnergyTrunk(grid=2, patch=16).eval()
    attention = EnergyTrunk(grid=2, patch=16, pooling="attention").eval()
    attention.load_state_dict(mean.state_dict() | {k: v for k, v in attention.state_dict().items()
                                                   if k.startswith("attention.")})
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        attention.attention.weight.zero_()
        attention.attention.bias.zero_()
        torch.testing.assert_close(attention(frames), mean(frames))  # equal scores: the mean
        attention.attention.weight.normal_()
        assert not torch.allclose(attention(frames), mean(frames), atol=1e-4)
