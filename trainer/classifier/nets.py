"""The classifier's networks: label teacher, student, quality teachers and their gate.

All take float frames ``[B, T, 3, H, W]`` already normalised by :class:`Preprocess`, which is the
only place pixels are scaled (it is exported inside the ONNX graph, so the worker cannot skew it).
"""

from __future__ import annotations

import torch
from torch import nn

MEAN, STD = 0.45, 0.25  # one value per channel: the synthetic world has no colour bias worth modelling


class Preprocess(nn.Module):
    """uint8 ``[B, T, H, W, 3]`` RGB → float ``[B, T, 3, H, W]``, scaled to [0, 1] then standardised."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        scaled = frames.to(torch.float32) / 255.0
        return ((scaled - MEAN) / STD).permute(0, 1, 4, 2, 3)


class MaxMeanPool(nn.Module):
    """Global max ‖ mean over space: ``[N, C, H, W]`` → ``[N, 2C]``.

    The max keeps a small object (a ball of 2–3 px at 64 px) that the mean alone would dilute.
    """

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.cat([maps.amax(dim=(2, 3)), maps.mean(dim=(2, 3))], dim=1)


def conv_stack(widths: list[int], pool: str = "mean") -> nn.Sequential:
    """A 4×4/4 patch stem then stride-2 3×3 convs (+ BN + ReLU), globally pooled → ``[N, widths[-1]]``
    (``pool="mean"``) or ``[N, 2 * widths[-1]]`` (``pool="max_mean"``).

    The patch stem keeps every pixel (48 values per patch) while costing a 2-core CPU 4× less than a
    full-resolution first layer.
    """
    layers: list[nn.Module] = []
    channels = 3
    for depth, width in enumerate(widths):
        kernel, stride, padding = (4, 4, 0) if depth == 0 else (3, 2, 1)
        layers += [nn.Conv2d(channels, width, kernel, stride=stride, padding=padding, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    pooling = [MaxMeanPool()] if pool == "max_mean" else [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, *pooling)


def per_frame(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """Run a 2-D encoder on every frame: ``[B, T, 3, H, W]`` → ``[B, T, D]``."""
    batch, steps = frames.shape[:2]
    return encoder(frames.flatten(0, 1)).reshape(batch, steps, -1)


class LabelTeacher(nn.Module):
    """The large tag network: wide per-frame CNN + temporal convolution, max-pooled over time."""

    def __init__(self, tags: int, widths: tuple[int, ...] = (64, 128, 256), temporal: int = 192, frame_stride: int = 2):
        super().__init__()
        self.frame_stride = frame_stride  # every other frame: the tags of the first second hardly change
        self.encoder = conv_stack(list(widths), pool="max_mean")
        self.temporal = nn.Sequential(nn.Conv1d(2 * widths[-1], temporal, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(temporal, tags)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        frames = frames[:, ::self.frame_stride]
        features = self.temporal(per_frame(self.encoder, frames).transpose(1, 2))
        return self.head(features.amax(dim=2))  # tag logits [B, tags]


class Student(nn.Module):
    """Small shared backbone with a per-frame tag head and a category head, plus a quality branch.

    Pooled tag logits are the max over frames of the per-frame logits, so a tag seen in one frame counts.
    Quality (noise, blur, blocks) is pixel texture that the tag features have no use for, so it has its
    own shallow branch and the backbone's channels stay with the objects.
    """

    def __init__(self, tags: int, categories: int, grades: int, feature_size: int,
                 widths: tuple[int, ...] = (48, 96, 112), quality_widths: tuple[int, ...] = (16, 24, 32)):
        super().__init__()
        width = 2 * widths[-1]  # max ‖ mean pooled per frame
        self.backbone = conv_stack(list(widths), pool="max_mean")
        self.tag_head = nn.Linear(width, tags)
        self.category_head = nn.Linear(2 * width, categories)
        self.quality_branch = conv_stack(list(quality_widths))
        self.quality_head = nn.Linear(quality_widths[-1], grades)
        self.quality_projection = nn.Linear(quality_widths[-1], feature_size)  # into the quality teachers' space

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        frame_features = per_frame(self.backbone, frames)
        video = torch.cat([frame_features.mean(dim=1), frame_features.amax(dim=1)], dim=1)
        frame_tag_logits = self.tag_head(frame_features)
        texture = per_frame(self.quality_branch, frames[:, ::2]).mean(dim=1)
        return {"frame_tag_logits": frame_tag_logits, "tag_logits": frame_tag_logits.amax(dim=1),
                "category_logits": self.category_head(video), "quality_logits": self.quality_head(texture),
                "quality_feature": self.quality_projection(texture)}


class FrameQualityTeacher(nn.Module):
    """Quality teacher #1: a per-frame 2-D CNN averaged over time (sees blur, noise, blockiness)."""

    def __init__(self, grades: int, feature_size: int, widths: tuple[int, ...] = (32, 48, 64)):
        super().__init__()
        self.encoder = conv_stack(list(widths))
        self.projection = nn.Linear(widths[-1], feature_size)
        self.head = nn.Linear(feature_size, grades)

    def feature(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(per_frame(self.encoder, frames[:, ::2]).mean(dim=1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.feature(frames)))


class SpatioTemporalQualityTeacher(nn.Module):
    """Quality teacher #2: a 3-D CNN over (T, H, W) (sees flicker and frame-to-frame artefacts)."""

    def __init__(self, grades: int, feature_size: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for depth, width in enumerate(widths):  # a (1, 4, 4) patch stem, then 3×3×3 convs over time and space
            kernel, stride, padding = ((1, 4, 4), (1, 4, 4), 0) if depth == 0 else (3, (1, 2, 2), 1)
            layers += [nn.Conv3d(channels, width, kernel, stride=stride, padding=padding, bias=False),
                       nn.BatchNorm3d(width), nn.ReLU()]
            channels = width
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.projection = nn.Linear(widths[-1], feature_size)
        self.head = nn.Linear(feature_size, grades)

    def feature(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(frames.transpose(1, 2)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.feature(frames)))


class GatedQualityTeachers(nn.Module):
    """Fuse K quality teachers' projected features with per-sample softmax importance weights."""

    def __init__(self, teachers: list[nn.Module], grades: int, feature_size: int):
        super().__init__()
        self.teachers = nn.ModuleList(teachers)
        self.gate = nn.Sequential(nn.Linear(feature_size * len(teachers), 32), nn.ReLU(), nn.Linear(32, len(teachers)))
        self.head = nn.Linear(feature_size, grades)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.stack([teacher.feature(frames) for teacher in self.teachers], dim=1)  # [B, K, D]
        weights = torch.softmax(self.gate(features.flatten(1)), dim=1)  # [B, K], rows sum to 1
        fused = (weights.unsqueeze(2) * features).sum(dim=1)
        return {"weights": weights, "feature": fused, "logits": self.head(torch.relu(fused))}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
