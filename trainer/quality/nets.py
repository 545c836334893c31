"""The fragment quality student and its serving graph.

The student reads the fragments mosaic (``stream_tagger.sampling.FragmentPolicy``: a G×G grid of
P×P native-resolution patches per frame), never a resized frame, so blocking, ringing and noise
reach it at the scale where they live. Two trunks:

- ``cnn``: the classifier's patch-stem CNN, one stride-2 stage deeper, so that with 7×7 patches of
  32 px the last map has one cell per patch.
- ``energy`` (:class:`PatchEnergy`): per patch, the log mean magnitude of learned zero-mean 3×3
  filters of the luma at two scales and of the frame-to-frame change, then a small MLP per patch,
  averaged over patches and frames. It is what the no-reference statistics of docs/quality.md §5
  compute (high-pass energy, its ratio across scales, repeated frames), with the filters learned:
  a log makes the content's contrast an additive constant that a linear layer over two scales
  cancels, which a ReLU CNN pooled by a mean has to approximate.

Either pooled feature feeds the grade head and, for the gated multi-teacher distillation, a
projection into the teachers' feature space.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from torch.nn import functional as F

from trainer.classifier.nets import (
    MEAN,
    QUALITY_HEAD_INPUTS,
    STD,
    conv_stack,
    per_frame,
    quality_logits,
)

STUDENT_WIDTHS = (16, 32, 48, 64)
TRUNKS = ("cnn", "energy")
POOLINGS = ("mean", "attention")
LUMA = (0.299, 0.587, 0.114)
#: Added to every mean magnitude before the log: a thousandth of a grey level in standardised units,
#: far below any texture, so a repeated frame's zero change stays finite and distinct.
ENERGY_FLOOR = 1e-3 / (255.0 * STD)


class PatchEnergy(nn.Module):
    """Fragments ``[N, 3, G*P, G*P]`` (one frame each, normalised) → per patch log energies ``[N, G*G, 2F]``.

    Each patch is filtered on its own (valid convolutions), so the seams between patches, which are
    not the picture's, never enter a response. The filters are forced to sum to zero, so a patch's
    brightness never does either.
    """

    def __init__(self, grid: int, patch: int, filters: int = 12):
        super().__init__()
        self.grid, self.patch = grid, patch
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1))
        start = torch.randn(filters, 1, 3, 3) * 0.3
        start[0, 0] = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])  # Laplacian
        start[1, 0] = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # horizontal step
        start[2, 0] = torch.tensor([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # vertical step
        self.filters = nn.Parameter(start)
        self.out_dim = 2 * filters

    def patches(self, frames: torch.Tensor) -> torch.Tensor:
        """The luma of each patch: ``[N, 3, G*P, G*P]`` → ``[N * G*G, 1, P, P]``."""
        luma = (frames * self.luma).sum(dim=1)
        g, p = self.grid, self.patch
        return luma.reshape(-1, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(-1, 1, p, p)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.energies(self.patches(frames))

    def energies(self, patches: torch.Tensor) -> torch.Tensor:
        """Luma patches ``[N * G*G, 1, P, P]`` → log energies ``[N, G*G, 2F]``."""
        kernel = self.filters - self.filters.mean(dim=(2, 3), keepdim=True)
        fine = F.conv2d(patches, kernel).abs().mean(dim=(2, 3))
        coarse = F.conv2d(F.avg_pool2d(patches, 2), kernel).abs().mean(dim=(2, 3))
        return torch.log(torch.cat([fine, coarse], dim=1) + ENERGY_FLOOR).reshape(-1, self.grid * self.grid, self.out_dim)


class EnergyTrunk(nn.Module):
    """Fragments ``[B, T, 3, G*P, G*P]`` → ``[B, width]``: :class:`PatchEnergy` and the log change from
    the previous frame per patch, a per-patch MLP, pooled over patches and frames.

    ``pooling``: ``mean``, every patch alike; ``attention``, a softmax over the clip's patches of a
    learned score of each patch's features, so that the patches that say most about the damage (a
    detailed one: a flat one looks the same pristine or smoothed) weigh most.
    """

    def __init__(self, grid: int, patch: int, width: int = 48, filters: int = 12, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")
        self.energy = PatchEnergy(grid, patch, filters)
        self.mlp = nn.Sequential(nn.Linear(self.energy.out_dim + 1, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.attention = nn.Linear(width, 1) if pooling == "attention" else None
        self.out_dim = width

    def forward(self, fragments: torch.Tensor) -> torch.Tensor:
        # One frame at a time (the traced graph unrolls the frames): a frame's filter responses,
        # [B*G*G, F, P-2, P-2] floats, are freed before the next frame's are made. All frames at once,
        # ONNX Runtime's peak for a batch of 8 clips was 392 MB; this way 117 MB (docs/quality.md §1).
        energies, lumas = [], []
        for step in range(fragments.shape[1]):
            patches = self.energy.patches(fragments[:, step])
            energies.append(self.energy.energies(patches))  # [B, G*G, 2F]
            lumas.append(patches.reshape(-1, self.energy.grid ** 2, self.energy.patch ** 2))
        changes = [(now - before).abs().mean(dim=2) for before, now in zip(lumas[:-1], lumas[1:])]  # [B, G*G] each
        change = torch.log(torch.stack(changes[:1] + changes, dim=1) + ENERGY_FLOOR)  # frame 0 borrows frame 1's
        hidden = self.mlp(torch.cat([torch.stack(energies, dim=1), change.unsqueeze(3)], dim=3))  # [B, T, G*G, width]
        if self.attention is None:
            return hidden.mean(dim=(1, 2))
        hidden = hidden.flatten(1, 2)
        weights = torch.softmax(self.attention(hidden), dim=1)  # [B, T*G*G, 1]
        return (weights * hidden).sum(dim=1)


class FragmentQualityStudent(nn.Module):
    """Fragments ``[B, T, 3, G*P, G*P]`` (normalised) → grade logits and the projected feature."""

    def __init__(self, grades: int, feature_size: int, widths: tuple[int, ...] = STUDENT_WIDTHS,
                 head_on: str = "projected", trunk: str = "cnn", grid: int = 7, patch: int = 32,
                 pooling: str = "mean"):
        super().__init__()
        if head_on not in QUALITY_HEAD_INPUTS:
            raise ValueError(f"unknown quality head input {head_on!r}; use one of {QUALITY_HEAD_INPUTS}")
        if trunk not in TRUNKS:
            raise ValueError(f"unknown quality trunk {trunk!r}; use one of {TRUNKS}")
        self.head_on = head_on  # "projected": the head classifies the projected feature (the document's claim 6)
        self.trunk_kind = trunk
        if trunk == "cnn" and pooling != "mean":
            raise ValueError("the cnn trunk pools by the mean only")
        self.trunk = conv_stack(list(widths), "mean") if trunk == "cnn" else EnergyTrunk(grid, patch, pooling=pooling)
        self.projection = nn.Linear(self.trunk.out_dim, feature_size)
        self.head = nn.Linear(feature_size if head_on == "projected" else self.trunk.out_dim, grades)

    def pooled(self, fragments: torch.Tensor) -> torch.Tensor:
        if self.trunk_kind == "cnn":
            return per_frame(self.trunk, fragments).mean(dim=1)
        return self.trunk(fragments)

    def forward(self, fragments: torch.Tensor) -> dict[str, torch.Tensor]:
        texture = self.pooled(fragments)
        feature = self.projection(texture)
        return {"quality_logits": quality_logits(self.head, texture, feature, self.head_on), "quality_feature": feature}


class EnergyQualityTeacher(nn.Module):
    """A quality teacher on the :class:`EnergyTrunk` (wider), with the teachers' interface."""

    def __init__(self, grades: int, feature_size: int, grid: int, patch: int):
        super().__init__()
        self.encoder = EnergyTrunk(grid, patch, width=96, filters=16)
        self.initial_dim = self.encoder.out_dim
        self.projection = nn.Linear(self.encoder.out_dim, feature_size)
        self.head = nn.Linear(feature_size, grades)

    def initial(self, fragments: torch.Tensor) -> torch.Tensor:
        return self.encoder(fragments)

    def feature(self, fragments: torch.Tensor) -> torch.Tensor:
        return self.projection(self.initial(fragments))

    def forward(self, fragments: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.feature(fragments)))


class ServingQuality(nn.Module):
    """uint8 fragments ``[B, T, G*P, G*P, 3]`` → ``quality_probs`` (softmax over the grades).

    :class:`Preprocess` (scale to [0, 1], standardise) is folded into the first layer, so the
    exported graph never runs elementwise arithmetic over the whole mosaic (600 K values a clip,
    most of the branch's time when it did): it transposes the uint8 bytes, casts them and convolves.
    The CNN's fold goes into its stem convolution and batch norm (exact: the stem has no padding);
    the energy trunk's into its luma weights (exact: its filters and frame differences sum to zero,
    so the mean drops out and only the scale is left).
    """

    def __init__(self, student: FragmentQualityStudent):
        super().__init__()
        self.student = fold_preprocessing(student)

    def forward(self, fragments: torch.Tensor) -> torch.Tensor:
        # Channels first before the cast: ONNX Runtime took the luma of the channels-last bytes 2-3 times
        # slower with a Mul and ReduceSum over the last axis and 8-9 times with a MatMul (2026-12-04).
        pixels = fragments.permute(0, 1, 4, 2, 3).to(torch.float32)
        return torch.softmax(self.student(pixels)["quality_logits"], dim=-1)


@torch.no_grad()
def fold_preprocessing(student: FragmentQualityStudent) -> FragmentQualityStudent:
    """A copy of ``student`` (eval mode) that takes raw 0..255 pixels instead of standardised ones."""
    if student.trunk_kind == "energy":
        folded = copy.deepcopy(student).eval()
        folded.trunk.energy.luma /= 255.0 * STD
        return folded
    return fold_into_stem(student)


def fold_into_stem(student: FragmentQualityStudent) -> FragmentQualityStudent:
    """The CNN trunk's fold.

    conv(w, (x / 255 - mean) / std) = conv(w / (255 std), x) - sum(w) mean / std per output channel,
    and the batch norm that follows absorbs that constant into its running mean.
    """
    folded = copy.deepcopy(student).eval()
    conv, norm = folded.trunk[0], folded.trunk[1]
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, nn.BatchNorm2d) or conv.padding != (0, 0) \
            or conv.bias is not None:
        raise ValueError("the fold needs an unpadded, bias-free first convolution followed by a batch norm")
    norm.running_mean += conv.weight.sum(dim=(1, 2, 3)) * (MEAN / STD)
    conv.weight /= 255.0 * STD
    return folded
