"""The exported graph: uint8 frames in, the probability tensors of the heads the engine has out.

From scratch the graph is the student with its in-graph preprocessing. On a pretrained encoder the
student's heads are exported over ``features [B*T, D]`` and merged behind the encoder's frame graph
(``trainer.encoder.merge_engine``), so the engine still takes frames.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stream_tagger.engines.manifest import Preprocessing
from stream_tagger.sampling import SamplingPolicy
from trainer.classifier.nets import MEAN, STD, Preprocess, Student
from trainer.encoder import FEATURES, ImageEncoder, merge_engine, merged_parity
from trainer.export import check_parity, export_onnx

#: (output name, student output, activation) in the order of the engine contract.
OUTPUTS = [("category_probs", "category_logits", "softmax"), ("tag_probs", "tag_logits", "sigmoid"),
           ("frame_tag_probs", "frame_tag_logits", "sigmoid"), ("quality_probs", "quality_logits", "softmax")]
OUTPUT_NAMES = [name for name, _, _ in OUTPUTS]


class ServingClassifier(nn.Module):
    """uint8 frames (or encoder features ``[B*T, D]`` with ``frames_per_clip``) → the heads' probabilities."""

    def __init__(self, student: Student, frames_per_clip: int | None = None):
        super().__init__()
        self.preprocess = Preprocess()
        self.student = student
        self.frames_per_clip = frames_per_clip
        self.outputs = [o for o in OUTPUTS if _has_head(student, o[1])]

    @property
    def output_names(self) -> list[str]:
        return [name for name, _, _ in self.outputs]

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.frames_per_clip is None:
            x = self.preprocess(inputs)
        else:
            x = inputs.reshape(-1, self.frames_per_clip, inputs.shape[-1])
        out = self.student(x)
        return tuple(torch.softmax(out[key], dim=-1) if act == "softmax" else torch.sigmoid(out[key])
                     for _, key, act in self.outputs)


def _has_head(student: Student, output: str) -> bool:
    head = {"category_logits": "category_head", "tag_logits": "tag_head", "frame_tag_logits": "tag_head",
            "quality_logits": "quality_head"}[output]
    return hasattr(student, head)


PREPROCESSING = Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3)


def export_classifier(student: Student, path: Path, policy: SamplingPolicy, seed: int = 0, atol: float = 1e-4,
                      encoder: ImageEncoder | None = None) -> float:
    """Export to ``path`` and assert ORT/torch parity at batch 1 and 16; returns the worst difference."""
    student = student.cpu().eval()
    shape = (policy.frames, policy.height, policy.width, 3)
    rng = np.random.default_rng(seed)
    if encoder is None:
        model = ServingClassifier(student).eval()
        export_onnx(model, {"frames": rng.integers(0, 256, (2, *shape), dtype=np.uint8)}, model.output_names, path)
        return max(check_parity(model, path, {"frames": rng.integers(0, 256, (batch, *shape), dtype=np.uint8)}, atol)
                   for batch in (1, 16))
    model = ServingClassifier(student, policy.frames).eval()
    with tempfile.TemporaryDirectory() as scratch:
        heads = Path(scratch) / "heads.onnx"
        features = rng.standard_normal((2 * policy.frames, encoder.dim)).astype(np.float32)
        export_onnx(model, {FEATURES: features}, model.output_names, heads, opset=encoder.opset)
        merge_engine(encoder, policy, heads, path)
    return max(merged_parity(model, encoder, policy, path, rng.integers(0, 256, (b, *shape), dtype=np.uint8), atol)
               for b in (1, 16))
