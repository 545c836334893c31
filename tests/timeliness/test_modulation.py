"""Gradient modulation: the coefficient formula and which encoder's gradients get scaled."""

import numpy as np
import torch
from torch.nn import functional as F

from trainer.timeliness import modulation
from trainer.timeliness.model import GradientScale, TimelinessModel


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


def _encoder_grads(model: TimelinessModel) -> dict[str, list[torch.Tensor]]:
    return {name: [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]
            for name, params in model.encoder_parameters().items()}


def test_own_scope_damps_only_the_gradient_of_the_modalitys_own_loss():
    # Given one batch and the gradients of the fusion loss and of each unimodal loss, taken apart
    torch.manual_seed(0)
    model = TimelinessModel(buckets=64, dim=8)
    frames = torch.randint(0, 255, (4, 8, 16, 16, 3), dtype=torch.uint8)
    ids = torch.randint(1, 64, (4, 32))
    y = torch.tensor([0, 1, 2, 3])
    parts = {}
    for name in ("fusion", "visual", "text"):
        model.zero_grad()
        fusion, visual, text = model.logits(frames, ids)
        F.cross_entropy({"fusion": fusion, "visual": visual, "text": text}[name], y).backward()
        parts[name] = _encoder_grads(model)
    # When the whole loss goes back once with the text modality's own gradient scaled by 0.3
    scales = {"visual": GradientScale(1.0), "text": GradientScale(0.3)}
    model.zero_grad()
    fusion, visual, text = model.logits(frames, ids, own_scales=scales)
    (F.cross_entropy(fusion, y) + F.cross_entropy(visual, y) + F.cross_entropy(text, y)).backward()
    got = _encoder_grads(model)
    # Then the text encoder got fusion + 0.3 × its own loss's gradient, the visual encoder both in full
    for g, f, own, other in zip(got["text"], parts["fusion"]["text"], parts["text"]["text"], parts["visual"]["text"]):
        assert torch.allclose(g, f + 0.3 * own + other, atol=1e-6)
    for g, f, own, other in zip(got["visual"], parts["fusion"]["visual"], parts["visual"]["visual"],
                                parts["text"]["visual"]):
        assert torch.allclose(g, f + own + other, atol=1e-6)
    # and the fusion gradient really reaches the text encoder (it is not the part being scaled)
    assert any(f.abs().sum() > 0 for f in parts["fusion"]["text"])
