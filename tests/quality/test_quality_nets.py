"""The fragment student's serving graph: preprocessing folded into the first convolution, exactly."""

from __future__ import annotations

import torch

from trainer.classifier.nets import Preprocess
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
