"""The classifier's networks: label teacher, student, quality teachers and their gate.

All take float frames ``[B, T, 3, H, W]`` already normalised by :class:`Preprocess`, which is the
only place pixels are scaled (it is exported inside the ONNX graph, so the worker cannot skew it),
or, on top of a pretrained encoder (``features_dim`` set), its per-frame features ``[B, T, D]``: then
each per-frame CNN becomes a small MLP over the features and the rest of the network is unchanged.
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
    stack = nn.Sequential(*layers, *pooling)
    stack.out_dim = widths[-1] * (2 if pool == "max_mean" else 1)
    return stack


def mlp_stack(features_dim: int, widths: list[int]) -> nn.Sequential:
    """Per-frame MLP over encoder features ``[N, D]`` → ``[N, widths[-1]]`` (LayerNorm first: encoders'
    feature scales differ wildly)."""
    layers: list[nn.Module] = [nn.LayerNorm(features_dim)]
    channels = features_dim
    for width in widths:
        layers += [nn.Linear(channels, width), nn.ReLU()]
        channels = width
    stack = nn.Sequential(*layers)
    stack.out_dim = widths[-1]
    return stack


def frame_trunk(widths: tuple[int, ...], pool: str, features_dim: int | None) -> nn.Sequential:
    """The per-frame network: a CNN over pixels, or an MLP over a pretrained encoder's features."""
    return conv_stack(list(widths), pool) if features_dim is None else mlp_stack(features_dim, list(widths))


#: What a student's quality head classifies: its projected feature (the second target feature of the
#: quality-distillation document, claim 6), or the unprojected trunk feature (this project's first rule).
QUALITY_HEAD_INPUTS = ("projected", "trunk")


def quality_logits(head: nn.Module, trunk_feature: torch.Tensor, projected: torch.Tensor, on: str) -> torch.Tensor:
    """Grade logits of a quality student; ReLU before the head as the teachers do."""
    return head(torch.relu(projected)) if on == "projected" else head(trunk_feature)


#: Per-frame widths over encoder features (the pixel CNNs' widths would throttle a 512-d feature).
FEATURE_WIDTHS = {"teacher": (512, 384), "student": (256, 192), "quality": (64, 48), "quality_narrow": (32, 24)}


def per_frame(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """Run a 2-D encoder on every frame: ``[B, T, 3, H, W]`` → ``[B, T, D]``."""
    batch, steps = frames.shape[:2]
    return encoder(frames.flatten(0, 1)).reshape(batch, steps, -1)


class LabelTeacher(nn.Module):
    """The large tag network: wide per-frame CNN + temporal convolution, max-pooled over time."""

    def __init__(self, tags: int, widths: tuple[int, ...] = (64, 128, 256), temporal: int = 192, frame_stride: int = 2,
                 features_dim: int | None = None):
        super().__init__()
        self.frame_stride = frame_stride  # every other frame: the tags of the first second hardly change
        if features_dim is not None:
            widths = FEATURE_WIDTHS["teacher"]
        self.encoder = frame_trunk(widths, "max_mean", features_dim)
        self.temporal = nn.Sequential(nn.Conv1d(self.encoder.out_dim, temporal, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(temporal, tags)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        frames = frames[:, ::self.frame_stride]
        features = self.temporal(per_frame(self.encoder, frames).transpose(1, 2))
        return self.head(features.amax(dim=2))  # tag logits [B, tags]


class Student(nn.Module):
    """Small shared backbone with a per-frame tag head and a category head, plus a quality branch.

    Pooled tag logits are the max over frames of the per-frame logits, so a tag seen in one frame counts.
    Quality (noise, blur, blocks) is pixel texture that the tag features have no use for, so it has its
    own shallow branch and the backbone's channels stay with the objects. A head whose label set is
    empty (0 tags, 0 categories, 0 grades) is not built, and the engine has no such output.
    """

    def __init__(self, tags: int, categories: int, grades: int, feature_size: int,
                 widths: tuple[int, ...] = (48, 96, 112), quality_widths: tuple[int, ...] = (16, 24, 32),
                 features_dim: int | None = None, quality_head_on: str = "projected"):
        super().__init__()
        if features_dim is not None:
            widths, quality_widths = FEATURE_WIDTHS["student"], FEATURE_WIDTHS["quality"]
        if quality_head_on not in QUALITY_HEAD_INPUTS:
            raise ValueError(f"unknown quality head input {quality_head_on!r}; use one of {QUALITY_HEAD_INPUTS}")
        self.quality_head_on = quality_head_on
        self.backbone = frame_trunk(widths, "max_mean", features_dim)
        width = self.backbone.out_dim
        if tags:
            self.tag_head = nn.Linear(width, tags)
        if categories:
            self.category_head = nn.Linear(2 * width, categories)
        if grades:
            self.quality_branch = frame_trunk(quality_widths, "mean", features_dim)
            # into the quality teachers' space
            self.quality_projection = nn.Linear(self.quality_branch.out_dim, feature_size)
            self.quality_head = nn.Linear(feature_size if quality_head_on == "projected" else
                                          self.quality_branch.out_dim, grades)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if hasattr(self, "tag_head") or hasattr(self, "category_head"):  # a quality-only probe skips the backbone
            frame_features = per_frame(self.backbone, frames)
        if hasattr(self, "tag_head"):
            out["frame_tag_logits"] = self.tag_head(frame_features)
            out["tag_logits"] = out["frame_tag_logits"].amax(dim=1)
        if hasattr(self, "category_head"):
            video = torch.cat([frame_features.mean(dim=1), frame_features.amax(dim=1)], dim=1)
            out["category_logits"] = self.category_head(video)
        if hasattr(self, "quality_head"):
            texture = per_frame(self.quality_branch, frames[:, ::2]).mean(dim=1)
            out["quality_feature"] = self.quality_projection(texture)
            out["quality_logits"] = quality_logits(self.quality_head, texture, out["quality_feature"],
                                                   self.quality_head_on)
        return out


class FrameQualityTeacher(nn.Module):
    """Quality teacher #1: a per-frame 2-D CNN averaged over time (sees blur, noise, blockiness)."""

    def __init__(self, grades: int, feature_size: int, widths: tuple[int, ...] = (32, 48, 64),
                 features_dim: int | None = None):
        super().__init__()
        self.encoder = frame_trunk(widths, "mean", features_dim)
        self.initial_dim = self.encoder.out_dim
        self.projection = nn.Linear(self.encoder.out_dim, feature_size)
        self.head = nn.Linear(feature_size, grades)

    def initial(self, frames: torch.Tensor) -> torch.Tensor:
        """The unprojected feature (the document's first initial video feature)."""
        return per_frame(self.encoder, frames[:, ::2]).mean(dim=1)

    def feature(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.initial(frames))

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
        self.initial_dim = widths[-1]
        self.projection = nn.Linear(widths[-1], feature_size)
        self.head = nn.Linear(feature_size, grades)

    def initial(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(frames.transpose(1, 2))

    def feature(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.initial(frames))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.feature(frames)))


class TemporalFeatureQualityTeacher(nn.Module):
    """Quality teacher #2 over encoder features: a temporal convolution (frame-to-frame changes)."""

    def __init__(self, grades: int, feature_size: int, features_dim: int, width: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(features_dim)
        self.encoder = nn.Sequential(nn.Conv1d(features_dim, width, 3, padding=1), nn.ReLU(),
                                     nn.Conv1d(width, width, 3, padding=1), nn.ReLU())
        self.initial_dim = width
        self.projection = nn.Linear(width, feature_size)
        self.head = nn.Linear(feature_size, grades)

    def initial(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.norm(frames).transpose(1, 2)).mean(dim=2)

    def feature(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.initial(frames))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.feature(frames)))


GATE_INPUTS = ("initial", "projected")


class GatedQualityTeachers(nn.Module):
    """Fuse K quality teachers' projected features with per-sample softmax importance weights.

    ``gate_input="initial"`` (the quality-distillation document's claim 4): each teacher's importance
    comes from a small gate network on that teacher's own *initial* (unprojected) feature, and the
    softmax runs over the teachers. ``"projected"``: one gate network reads the concatenated projected
    features (this project's first rule). Either way the fused feature is the weighted sum of the
    projected features (claim 2) and the head classifies it.
    """

    def __init__(self, teachers: list[nn.Module], grades: int, feature_size: int, gate_input: str = "initial"):
        super().__init__()
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"unknown gate input {gate_input!r}; use one of {GATE_INPUTS}")
        self.gate_input = gate_input
        self.teachers = nn.ModuleList(teachers)
        if gate_input == "initial":
            self.gate = nn.ModuleList(nn.Sequential(nn.Linear(t.initial_dim, 32), nn.ReLU(), nn.Linear(32, 1))
                                      for t in teachers)
        else:
            self.gate = nn.Sequential(nn.Linear(feature_size * len(teachers), 32), nn.ReLU(),
                                      nn.Linear(32, len(teachers)))
        self.head = nn.Linear(feature_size, grades)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        initials = [teacher.initial(frames) for teacher in self.teachers]
        features = torch.stack([t.projection(x) for t, x in zip(self.teachers, initials)], dim=1)  # [B, K, D]
        if self.gate_input == "initial":
            scores = torch.cat([gate(x) for gate, x in zip(self.gate, initials)], dim=1)
        else:
            scores = self.gate(features.flatten(1))
        weights = torch.softmax(scores, dim=1)  # [B, K], rows sum to 1
        fused = (weights.unsqueeze(2) * features).sum(dim=1)
        return {"weights": weights, "feature": fused, "logits": self.head(torch.relu(fused))}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
