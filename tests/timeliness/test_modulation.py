"""Gradient modulation: the coefficient formula and which encoder's gradients get scaled."""

import numpy as np
import torch
from torch.nn import functional as F

from trainer.timeliness import modulation
from trainer.timeliness.model import TimelinessModel


def test_coefficient_is_one_at_or_below_ratio_one():
    for ratio in (0.0, 0.3, 0.99, 1.0):
        assert modulation.coefficient(ratio) == 1.0


def test_coefficient_decreases_monotonically_above_one():
    values = [modulation.coefficient(r) for r in np.linspace(1.0, 6.0, 40)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert 0.0 <= values[-1] < 0.01


def test_only_the_stronger_modality_is_damped():
    labels = torch.tensor([0, 1])
    strong = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]])  # confident and right
    weak = torch.zeros(2, 4)  # uniform
    coeffs = modulation.coefficients(visual_logits=weak, text_logits=strong, labels=labels)
    assert coeffs["visual"] == 1.0 and coeffs["text"] < 0.5


def test_scale_gradients_touches_only_the_named_encoder():
    # Given a model with gradients after one backward pass
    torch.manual_seed(0)
    model = TimelinessModel(buckets=64, dim=8)
    frames = torch.randint(0, 255, (2, 8, 16, 16, 3), dtype=torch.uint8)
    ids = torch.randint(1, 64, (2, 32))
    fusion, visual, text = model.logits(frames, ids)
    (F.cross_entropy(fusion, torch.tensor([0, 1])) + visual.sum() + text.sum()).backward()
    before = {name: [p.grad.clone() for p in params if p.grad is not None]
              for name, params in model.encoder_parameters().items()}
    head_before = model.fusion_head[0].weight.grad.clone()
    # When the text encoder is damped by 0.25
    modulation.scale_gradients(model.encoder_parameters(), {"visual": 1.0, "text": 0.25})
    # Then text gradients are a quarter, visual and fusion gradients untouched
    after = {name: [p.grad for p in params if p.grad is not None] for name, params in model.encoder_parameters().items()}
    assert all(torch.allclose(a, b * 0.25) for a, b in zip(after["text"], before["text"]))
    assert all(torch.equal(a, b) for a, b in zip(after["visual"], before["visual"]))
    assert torch.equal(model.fusion_head[0].weight.grad, head_before)
