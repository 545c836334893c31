"""``stream-tagger-train train classifier``: teachers → alternating student → ONNX engine version.

    stream-tagger-train train classifier --data data/cls_train --eval-data data/cls_eval --out engines/ --seed 11
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stream_tagger.engines.manifest import MODEL_NAME, FramesFeed, TrainingRecord
from stream_tagger.engines.repository import publish_version
from trainer.classifier.clips import POLICY, ClipSet, load_clips
from trainer.classifier.metrics import classifier_metrics, mean_average_precision
from trainer.classifier.nets import GatedQualityTeachers, Student, parameter_count
from trainer.classifier.selection import FEATURE_SIZE, select_teachers
from trainer.classifier.serving import PREPROCESSING, ServingClassifier, export_classifier
from trainer.classifier.stages import Budget, predict, train_gate, train_label_teacher, train_student
from trainer.common import seed_everything
from trainer.export import command_line, dataset_hash
from video_world.labels import CATEGORIES, QUALITY_GRADES, TAGS

DEFAULT_AGGREGATION = {"rule": "pooled_threshold", "threshold": 0.5, "top_n": 3, "min_frames": 2,
                       "frame_threshold": 0.5}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    budget = Budget()
    parser.add_argument("--data", type=Path, required=True, help="training dataset folder")
    parser.add_argument("--eval-data", type=Path, help="clean held-out dataset (metrics go to the manifest)")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="engine repository root")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--teacher-epochs", type=int, default=budget.teacher_epochs)
    parser.add_argument("--student-epochs", type=int, default=budget.student_epochs)
    parser.add_argument("--quality-epochs", type=int, default=budget.quality_epochs)
    parser.add_argument("--student-tags", choices=["teacher", "noisy"], default="teacher",
                        help="tag targets of the student: the label teacher's outputs or the noisy tags (ablation)")
    parser.add_argument("--schedule", choices=["alternating", "category-only"], default="alternating")
    parser.add_argument("--quality", choices=["gated", "single", "none"], default="gated",
                        help="quality distillation: gated multi-teacher, best single teacher, or none")
    parser.add_argument("--no-export", action="store_true", help="only print metrics (ablations)")
    parser.add_argument("--metrics-json", type=Path, help="also write the held-out metrics here")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    seed_everything(args.seed)
    budget = Budget(teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs,
                    quality_epochs=args.quality_epochs)
    clips = load_clips(args.data)
    teacher, student, notes = train_all(clips, budget, args)
    metrics = {**notes, **(held_out_metrics(teacher, student, load_clips(args.eval_data)) if args.eval_data else {})}
    print(json.dumps(metrics, indent=2))
    if args.metrics_json:
        args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_json.write_text(json.dumps(metrics, indent=2) + "\n")
    if not args.no_export:
        seconds = time.monotonic() - started
        print(f"wrote {export_version(student, args, metrics, len(clips), seconds)}")
    return 0


def train_all(clips: ClipSet, budget: Budget, args: argparse.Namespace) -> tuple[torch.nn.Module, Student, dict]:
    teacher, teacher_history = train_label_teacher(clips, budget, args.seed)
    clips.teacher_tags = predict(teacher, clips, lambda m, x: torch.sigmoid(m(x)))
    gated, reports = quality_teachers(clips, budget, args)
    student = Student(len(TAGS), len(CATEGORIES), len(QUALITY_GRADES), FEATURE_SIZE)
    history = train_student(student, clips, budget, args.seed, gated, alternate=args.schedule == "alternating",
                            use_teacher_tags=args.student_tags == "teacher")
    notes = {"teacher_parameters": parameter_count(teacher), "student_parameters": parameter_count(student),
             "teacher_loss_history": [round(x, 4) for x in teacher_history],
             "student_loss_history": {k: [round(x, 4) for x in v] for k, v in history.items()},
             "quality_candidates": [vars(r) for r in reports]}
    return teacher, student, notes


def quality_teachers(clips: ClipSet, budget: Budget, args: argparse.Namespace) -> tuple[GatedQualityTeachers | None, list]:
    if args.quality == "none":
        return None, []
    order = np.random.default_rng(args.seed).permutation(len(clips))
    cut = int(0.85 * len(clips))
    selected, reports = select_teachers(clips.subset(order[:cut]), clips.subset(order[cut:]), budget, args.seed,
                                        len(QUALITY_GRADES))
    gated = GatedQualityTeachers(selected[:1] if args.quality == "single" else selected, len(QUALITY_GRADES), FEATURE_SIZE)
    train_gate(gated, clips, budget, args.seed)
    gated.eval()
    return gated, reports


def held_out_metrics(teacher: torch.nn.Module, student: Student, clips: ClipSet) -> dict:
    outputs = serve_torch(student, clips)
    metrics = classifier_metrics(outputs, clips.category.numpy(), clips.true_tags.numpy(), clips.quality.numpy())
    teacher_probs = predict(teacher, clips, lambda m, x: torch.sigmoid(m(x))).numpy()
    metrics["teacher_tag_map"] = mean_average_precision(teacher_probs, clips.true_tags.numpy())
    metrics["eval_clips"] = len(clips)
    return metrics


@torch.no_grad()
def serve_torch(student: Student, clips: ClipSet, batch_size: int = 64) -> dict[str, np.ndarray]:
    model = ServingClassifier(student).eval()
    parts = [model(clips.frames[i]) for i in clips.batches(batch_size)]
    names = ["category_probs", "tag_probs", "frame_tag_probs", "quality_probs"]
    return {name: torch.cat([p[k] for p in parts]).numpy() for k, name in enumerate(names)}


def export_version(student: Student, args: argparse.Namespace, metrics: dict, clips: int, seconds: float) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        model_path = Path(scratch) / MODEL_NAME
        parity = export_classifier(student, model_path, args.seed)
        return publish_version(
            args.out, "classifier", {MODEL_NAME: model_path},
            feeds={"frames": FramesFeed(sampling=POLICY)},
            labels={"category": list(CATEGORIES), "tags": list(TAGS), "quality": list(QUALITY_GRADES)},
            preprocessing=PREPROCESSING,
            serving={"aggregation": DEFAULT_AGGREGATION},
            training=TrainingRecord(command=command_line(), seed=args.seed, data_hash=dataset_hash(args.data),
                                    data_clips=clips, seconds=round(seconds, 1)),
            metrics={**metrics, "ort_parity_max_abs_diff": parity},
        )
