"""The exported graph: uint8 frames in, the four probability tensors of the engine contract out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from stream_tagger.engines.manifest import Preprocessing
from trainer.classifier.clips import POLICY
from trainer.classifier.nets import MEAN, STD, Preprocess, Student
from trainer.export import check_parity, export_onnx

OUTPUT_NAMES = ["category_probs", "tag_probs", "frame_tag_probs", "quality_probs"]


class ServingClassifier(nn.Module):
    def __init__(self, student: Student):
        super().__init__()
        self.preprocess = Preprocess()
        self.student = student

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.student(self.preprocess(frames))
        return (torch.softmax(out["category_logits"], dim=1), torch.sigmoid(out["tag_logits"]),
                torch.sigmoid(out["frame_tag_logits"]), torch.softmax(out["quality_logits"], dim=1))


PREPROCESSING = Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3)


def export_classifier(student: Student, path: Path, seed: int = 0, atol: float = 1e-4) -> float:
    """Export to ``path`` and assert ORT/torch parity at batch 1 and 16; returns the worst difference."""
    model = ServingClassifier(student).eval()
    shape = (POLICY.frames, POLICY.height, POLICY.width, 3)
    rng = np.random.default_rng(seed)
    export_onnx(model, {"frames": rng.integers(0, 256, (2, *shape), dtype=np.uint8)}, OUTPUT_NAMES, path)
    return max(check_parity(model, path, {"frames": rng.integers(0, 256, (batch, *shape), dtype=np.uint8)}, atol)
               for batch in (1, 16))
