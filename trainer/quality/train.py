"""``stream-tagger-train train quality``: the classifier's quality branch on native-resolution fragments.

    stream-tagger-train train quality --data data/quality-train --eval-data data/quality-eval \\
        --base engines/classifier/2 --out engines --seed 18

The seed's gated multi-teacher distillation, on fragments instead of 64 px frames: structurally
different quality teachers (a per-frame CNN, a 3-D CNN, a narrow CNN) are trained, probed and
selected (``trainer.classifier.selection``), a gate fuses the selected ones, and the fragment
student learns from the labels, from the fused teacher's prediction and from its feature (after
projection). The published version is the base classifier's graph (category and tags exactly as
trained there) with this branch attached (``trainer.quality.compose``): inputs ``frames`` and
``fragments``, one ``quality_probs`` output, the grades of the training dataset.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.sampling import FragmentPolicy
from trainer import checkpoint, distributed
from trainer.checkpoint import Checkpoints
from trainer.classifier.losses import quality_distillation_loss
from trainer.classifier.nets import GATE_INPUTS, QUALITY_HEAD_INPUTS, GatedQualityTeachers, parameter_count
from trainer.classifier.selection import FEATURE_SIZE, SelectionRule, accuracy, candidate_library, select_teachers
from trainer.classifier.stages import Budget, Run, fit, predict, train_gate
from trainer.common import seed_everything
from trainer.datasets.clips import ClipSet
from trainer.datasets.format import Dataset, DatasetError, held_out
from trainer.datasets.labels import label_set
from trainer.datasets.views import FramesView, cached_view
from trainer.distributed import TrainContext
from trainer.export import check_parity, command_line, dataset_hash, export_onnx
from trainer.quality.attach import newest_plain, publish_attached
from trainer.quality.compose import FRAGMENTS_INPUT, QUALITY_OUTPUT
from trainer.quality.data import DrawSource, FragmentDrawsView, quality_clips
from trainer.quality.nets import POOLINGS, TRUNKS, EnergyQualityTeacher, FragmentQualityStudent, ServingQuality

#: 7×7 patches of 32 px from 4 frames of the first second (the classifier's frames input samples
#: 8 frames over the same second, so the fragments are cut from frames decoded anyway).
FRAGMENTS = FragmentPolicy(frames=4, grid=7, patch=32, seconds=1.0, max_seconds=2.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    budget = Budget()
    parser.add_argument("--data", type=Path, required=True, help="training dataset (rows with a quality grade)")
    parser.add_argument("--eval-data", type=Path, help="held-out dataset (default: rows marked split=eval)")
    parser.add_argument("--base", type=Path, help="classifier version whose category/tag graph is kept "
                        "(default: the newest classifier under --out without a fragments input)")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="engine repository root")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--grid", type=int, default=FRAGMENTS.grid, help="grid cells per side")
    parser.add_argument("--patch", type=int, default=FRAGMENTS.patch, help="patch side in native pixels")
    parser.add_argument("--fragment-frames", type=int, default=FRAGMENTS.frames)
    parser.add_argument("--draws", type=int, default=4, help="random-offset mosaics cached per training clip")
    parser.add_argument("--fragment-deblock", choices=["base", "on", "off"], default="base",
                        help="cut the fragments from deblocked pictures (on), from pictures decoded without "
                             "the deblocking filter (off), or as the base's frames input decodes (base: one "
                             "decoding pass serves both inputs); trained and served the same way")
    parser.add_argument("--teacher-epochs", type=int, default=budget.quality_epochs)
    parser.add_argument("--gate-epochs", type=int, default=budget.gate_epochs)
    parser.add_argument("--student-epochs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=budget.batch_size)
    parser.add_argument("--patience", type=int, default=4,
                        help="epochs without a lower loss before a stage stops (one epoch over a few hundred "
                             "clips is noisy; the classifier's default of 2 stopped the student a third in)")
    parser.add_argument("--class-balance", choices=["on", "off"], default="off",
                        help="on: the student's label loss weighs each grade by the inverse of its share of "
                             "the training clips (a rare grade is not learnt as improbable)")
    parser.add_argument("--quality", choices=["gated", "single", "none"], default="gated",
                        help="distillation: gated multi-teacher, best single teacher, or labels only")
    parser.add_argument("--gate-input", choices=GATE_INPUTS, default="initial",
                        help="what the gate reads: each teacher's initial (unprojected) feature (claim 4) or "
                             "the concatenated projected features")
    parser.add_argument("--quality-head-on", choices=QUALITY_HEAD_INPUTS, default="projected",
                        help="the student's head classifies its projected feature (claim 6) or its trunk's")
    parser.add_argument("--trunk", choices=TRUNKS, default="energy",
                        help="the student's trunk: energy (learned per-patch log filter energies, "
                             "trainer/quality/nets.py) or cnn (the patch-stem CNN)")
    parser.add_argument("--pooling", choices=POOLINGS, default="mean",
                        help="how the energy student pools its patches: mean, or attention (a learned "
                             "softmax weight per patch, trainer/quality/nets.py)")
    parser.add_argument("--selection-margin", type=float, default=SelectionRule.margin_z,
                        help="claim 8 keeps a teacher when its probe student beats it by more than this many "
                             "standard errors of the paired difference on the validation clips (0: any gain)")
    parser.add_argument("--teacher-selection", choices=["on", "off"], default="on",
                        help="on: claims 8-9 (docs/classifier.md); off: every candidate is a gated teacher")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--no-export", action="store_true", help="only print metrics")
    parser.add_argument("--metrics-json", type=Path)
    distributed.add_arguments(parser)
    checkpoint.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return distributed.run_in_context(_run, args)


def _run(args: argparse.Namespace, ctx: TrainContext) -> int:
    started = time.monotonic()
    seed_everything(args.seed)
    base = None if args.no_export else base_version(args)
    policy = fragment_policy(args, base)
    dataset = Dataset.load(args.data)
    train_rows = dataset.split_rows("train")
    grades = _grades(dataset, train_rows, ctx)
    cached = cached_view(dataset, FragmentDrawsView(policy, args.draws), ctx.rank, ctx.world, ctx.log)
    clips = quality_clips(dataset, train_rows, grades, DrawSource(cached), ctx.log)
    held = held_out(dataset, args.eval_data)
    eval_clips = None if held is None else quality_clips(
        held[0], held[1], grades, cached_view(held[0], FramesView(policy), ctx.rank, ctx.world, ctx.log), ctx.log)
    budget = Budget(batch_size=args.batch_size, quality_epochs=args.teacher_epochs, gate_epochs=args.gate_epochs,
                    patience=args.patience)
    run_ = Run(ctx, Checkpoints.for_run(args, "quality", ctx), args.seed, budget)
    gated, reports = quality_teachers(clips, grades, run_, args.quality, args, policy)
    student = new_student(len(grades), args, policy)
    weights = balanced_weights(clips.targets["quality"], len(grades)) if args.class_balance == "on" else None
    history = fit("fragment_student", student, clips, student_loss(gated, weights), run_, args.student_epochs)
    if not ctx.is_main:
        return 0
    metrics = {"train_clips": len(clips), "student_parameters": parameter_count(student),
               "student_loss_history": history, "class_balance": args.class_balance,
               "fragments_deblocked": policy.deblock, "quality_candidates": [r.as_dict() for r in reports],
               "selected_teachers": [r.name for r in reports if r.chosen][:1 if args.quality == "single" else None]}
    if eval_clips is not None:
        metrics |= held_out_metrics(student, gated, eval_clips, ctx)
    print(json.dumps(metrics, indent=2))
    if args.metrics_json:
        args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_json.write_text(json.dumps(metrics, indent=2) + "\n")
    if base is not None:
        print(f"wrote {export_version(student, policy, base, grades, args, metrics, len(clips), time.monotonic() - started)}")
    return 0


def base_version(args: argparse.Namespace) -> Path:
    return args.base if args.base is not None else newest_plain(args.out)


def fragment_policy(args: argparse.Namespace, base: Path | None) -> FragmentPolicy:
    """The flags' mosaic, decoding what the base's frames input decodes (one decoding pass serves both)."""
    decode, deblock = "all", True
    if base is not None:
        frames = EngineManifest.load(base).sampling_policies
        if frames:
            decode, deblock = getattr(frames[0], "decode", "all"), getattr(frames[0], "deblock", True)
    if args.fragment_deblock != "base":
        deblock = args.fragment_deblock == "on"
    try:
        return FragmentPolicy(**FRAGMENTS.model_dump() | {"grid": args.grid, "patch": args.patch,
                                                          "frames": args.fragment_frames, "decode": decode,
                                                          "deblock": deblock})
    except ValueError as exc:
        raise SystemExit(f"invalid fragment policy: {exc}") from None


def _grades(dataset: Dataset, rows: list[int], ctx: TrainContext) -> list[str]:
    labels = label_set(dataset, rows, "quality")
    if labels is None or not labels.counts:
        raise DatasetError(f"{dataset.root}: no training row carries a quality grade")
    ctx.log(labels.describe())
    return labels.labels


def new_student(grades: int, args: argparse.Namespace, policy: FragmentPolicy) -> FragmentQualityStudent:
    return FragmentQualityStudent(grades, FEATURE_SIZE, head_on=args.quality_head_on, trunk=args.trunk,
                                  grid=policy.grid, patch=policy.patch, pooling=args.pooling)


ENERGY_TEACHER = "patch_energy"


def fragment_candidates(grades: int, policy: FragmentPolicy) -> dict[str, torch.nn.Module]:
    """The classifier's quality teachers, and one on the per-patch filter energies."""
    energy = EnergyQualityTeacher(grades, FEATURE_SIZE, policy.grid, policy.patch)
    return candidate_library(grades) | {ENERGY_TEACHER: energy}


def quality_teachers(clips: ClipSet, grades: list[str], run: Run, mode: str, args: argparse.Namespace,
                     policy: FragmentPolicy) -> tuple[GatedQualityTeachers | None, list]:
    """Teachers trained on fragments, probed and selected, then gated (``single``: the best one alone)."""
    if mode == "none":
        return None, []
    order = np.random.default_rng(run.seed).permutation(len(clips))
    cut = int(0.85 * len(clips))
    rule = SelectionRule(enabled=args.teacher_selection == "on", margin_z=args.selection_margin)
    selected, reports = select_teachers(clips.subset(order[:cut]), clips.subset(order[cut:]), run, len(grades),
                                        probe_factory=lambda: new_student(len(grades), args, policy), rule=rule,
                                        candidates=fragment_candidates(len(grades), policy))
    gated = GatedQualityTeachers(selected[:1] if mode == "single" else selected, len(grades), FEATURE_SIZE,
                                 gate_input=args.gate_input)
    train_gate(gated, clips, run)
    gated.eval()
    return gated, reports


def balanced_weights(labels: np.ndarray, classes: int) -> torch.Tensor:
    """Per-class CE weights ``N / (K n_k)``: the clips of each grade weigh ``N / K`` in all, whatever the
    grade's share (a grade no training clip carries gets weight 0)."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    weights = np.divide(counts.sum(), classes * counts, out=np.zeros(classes), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


def student_loss(gated: GatedQualityTeachers | None, class_weights: torch.Tensor | None = None):
    """CE on the grade, plus (with teachers) the fused teacher's CE and the feature distance."""
    def loss(student: torch.nn.Module, x: torch.Tensor, batch) -> torch.Tensor:
        out = student(x)
        weights = None if class_weights is None else class_weights.to(x.device)
        if gated is None:
            return F.cross_entropy(out["quality_logits"], batch["quality"], weight=weights)
        with torch.no_grad():
            teacher = gated(x)
        return quality_distillation_loss(teacher["logits"], out["quality_logits"], teacher["feature"],
                                         out["quality_feature"], batch["quality"], weights)[0]

    return loss


def held_out_metrics(student: FragmentQualityStudent, gated: GatedQualityTeachers | None, clips: ClipSet,
                     ctx: TrainContext) -> dict:
    local = TrainContext(ctx.device, loader_workers=ctx.loader_workers)
    labels = clips.targets["quality"]
    logits = predict(student, clips, lambda m, x: m(x)["quality_logits"], local)
    metrics = {"eval_clips": len(clips), "quality_accuracy": round(accuracy(logits, labels), 4),
               "quality_confusion": confusion(logits.argmax(1), labels, logits.shape[1])}
    if gated is not None:
        fused = predict(gated, clips, lambda m, x: m(x)["logits"], local)
        metrics["gated_teachers_accuracy"] = round(accuracy(fused, labels), 4)
    return metrics


def confusion(predicted: np.ndarray, truth: np.ndarray, classes: int) -> list[list[int]]:
    """Rows: true grade, columns: predicted grade."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix.tolist()


def export_version(student: FragmentQualityStudent, policy: FragmentPolicy, base: Path, grades: list[str],
                   args: argparse.Namespace, metrics: dict, clips: int, seconds: float) -> Path:
    """The base graph with the quality branch attached, checked against torch, published."""
    model = ServingQuality(student.cpu().eval()).eval()
    shape = (policy.frames, policy.height, policy.width, 3)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        quality = Path(scratch) / "quality.onnx"
        export_onnx(model, {FRAGMENTS_INPUT: rng.integers(0, 256, (2, *shape), dtype=np.uint8)}, [QUALITY_OUTPUT],
                    quality)
        parity = max(check_parity(model, quality, {FRAGMENTS_INPUT: rng.integers(0, 256, (b, *shape), dtype=np.uint8)})
                     for b in (1, 8))
        training = {"command": command_line(), "seed": args.seed, "data_hash": dataset_hash(args.data),
                    "data_clips": clips, "seconds": round(seconds, 1)}
        extra = {"quality_ort_parity_max_abs_diff": parity,
                 **({"quality_eval_data_hash": dataset_hash(args.eval_data)} if args.eval_data else {})}
        return publish_attached(args.out, base, quality, policy, grades, training, metrics, extra, args.version,
                                Path(scratch))
