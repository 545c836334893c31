"""``stream-tagger-train train timeliness``: train the multimodal timeliness model and export an engine version.

The classes come from the dataset (its taxonomy's ``timeliness`` with ``ttl_hours``, else its rows),
the frames through the shared cache and DataLoader, the titles through the worker's tokenizer.
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

from stream_tagger.engines.manifest import MODEL_NAME, FramesFeed, Preprocessing, TitleFeed, TrainingRecord
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.text import HashedTokenizer
from trainer import checkpoint, distributed, policy
from trainer.checkpoint import Checkpoints
from trainer.common import seed_everything
from trainer.datasets.clips import ClipSet, clip_loader, to_device
from trainer.datasets.format import Dataset
from trainer.datasets.views import FramesView
from trainer.distributed import TrainContext
from trainer.encoder import (
    FEATURES,
    ImageEncoder,
    describe,
    encoder_preprocessing,
    merge_engine,
    merged_parity,
)
from trainer.export import check_parity, command_line, dataset_hash, export_onnx
from trainer.loop import run_stage
from trainer.single_label import SingleLabels, training_and_held_out
from trainer.timeliness import modulation
from trainer.timeliness.evaluate import evidence_breakdown, mode_breakdown
from trainer.timeliness.model import MEAN, STD, FeatureServing, GradientScale, TimelinessModel, TrainingLogits

POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
BATCH = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="training dataset folder")
    parser.add_argument("--eval-data", type=Path, help="held-out dataset (default: --data's rows marked split=eval)")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="engine repository root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--no-modulation", action="store_true", help="turn gradient modulation off")
    parser.add_argument("--alpha", type=float, default=modulation.DEFAULT_ALPHA, help="modulation strength")
    parser.add_argument("--modulation-scope", choices=modulation.SCOPES, default="all",
                        help="own: damp only the gradient from the modality's own head (the fusion loss's "
                             "gradient undamped; claims 3-6); all: damp the encoder's whole gradient")
    parser.add_argument("--heads", choices=("fusion", "all"), default="all",
                        help="all: each encoder also trained by its own head; fusion: fusion loss only")
    parser.add_argument("--encoder", type=Path, help="pretrained image encoder FILE.onnx (+ FILE.json sidecar)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    parser.add_argument("--no-export", action="store_true", help="train and evaluate only (ablations)")
    parser.add_argument("--metrics-json", type=Path, help="also write the held-out metrics here (ablations)")
    policy.add_arguments(parser, POLICY)
    distributed.add_arguments(parser)
    checkpoint.add_arguments(parser)


def titles(dataset: Dataset, clips: ClipSet, tokenizer: HashedTokenizer) -> np.ndarray:
    return tokenizer.encode_batch([dataset.rows[i].title or "" for i in clips.rows])


def train_epoch(model: TimelinessModel, optimizer, clips: ClipSet, args, ctx: TrainContext, epoch: int) -> dict:
    """One epoch. Modulation ``own`` scales, inside the backward pass, only the gradient each encoder gets
    from its own head's loss; ``all`` scales the encoder's whole gradient (fusion loss included) after it."""
    scope = "off" if args.no_modulation else args.modulation_scope
    own_scales = {"visual": GradientScale(), "text": GradientScale()} if scope == "own" else None
    wrapped = ctx.wrap(TrainingLogits(model, detach_unimodal=args.heads == "fusion", own_scales=own_scales))
    wrapped.train()
    logged = {"visual": [], "text": [], "loss": []}
    for batch in clip_loader(clips, BATCH, ctx, args.seed, epoch):
        batch = to_device(batch, ctx)
        x = batch["inputs"] if batch["inputs"].dtype == torch.uint8 else batch["inputs"].float()
        y = batch["label"]
        fusion, visual, text = wrapped(x, batch["title_ids"])
        loss = F.cross_entropy(fusion, y) + F.cross_entropy(visual, y) + F.cross_entropy(text, y)
        coeffs = {"visual": 1.0, "text": 1.0}
        if scope != "off":  # from this batch's scores, before backward reads them
            coeffs = modulation.coefficients(visual, text, y, args.alpha, all_reduce=ctx.sum)
        if own_scales is not None:
            for name, scale in own_scales.items():
                scale.value = coeffs[name]
        optimizer.zero_grad()
        loss.backward()
        if scope == "all":
            modulation.scale_gradients(model.encoder_parameters(), coeffs)
        optimizer.step()
        for name in ("visual", "text"):
            logged[name].append(coeffs[name])
        logged["loss"].append(loss.item())
    return {name: round(float(np.mean(values)), 4) for name, values in logged.items()}


@torch.no_grad()
def predict(model: TimelinessModel, clips: ClipSet, ctx: TrainContext) -> dict[str, np.ndarray]:
    model.eval()
    out = {"fusion": [], "visual": [], "text": []}
    for batch in clip_loader(clips, 128, TrainContext(ctx.device, loader_workers=ctx.loader_workers), shuffle=False):
        batch = to_device(batch, ctx)
        x = batch["inputs"] if batch["inputs"].dtype == torch.uint8 else batch["inputs"].float()
        for name, value in zip(out, model(x, batch["title_ids"])):
            out[name].append(value.cpu().numpy())
    return {name: np.concatenate(values).argmax(1) for name, values in out.items()}


def run(args: argparse.Namespace) -> int:
    return distributed.run_in_context(_run, args)


def _run(args: argparse.Namespace, ctx: TrainContext) -> int:
    seed_everything(args.seed)
    tokenizer = HashedTokenizer()
    encoder = ImageEncoder.load(args.encoder) if args.encoder else None
    input_policy = policy.policy_from_args(args, POLICY)
    view = encoder.features_view(input_policy) if encoder else FramesView(input_policy)
    dataset, labels, train, held, evaluation = training_and_held_out(args.data, args.eval_data, "timeliness",
                                                                     view, ctx)
    train = train.with_targets(title_ids=titles(dataset, train, tokenizer))
    if evaluation is not None:
        evaluation = evaluation.with_targets(title_ids=titles(held[0], evaluation, tokenizer))
    checkpoints = Checkpoints.for_run(args, "timeliness", ctx)
    started = time.time()
    model = TimelinessModel(tokenizer.buckets, len(labels.labels), features_dim=encoder.dim if encoder else None)
    model.to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)

    def epoch_fn(epoch: int) -> dict:
        logged = train_epoch(model, optimizer, train, args, ctx, epoch)
        schedule.step()
        return logged

    history = run_stage("timeliness", {"model": model, "optimizer": optimizer, "schedule": schedule}, args.epochs,
                        epoch_fn, ctx, checkpoints)
    ctx.save_rank_weights(args.rank_weights, {"model": model})
    if not ctx.is_main:
        return 0
    metrics: dict = {"train_clips": len(train)}
    if evaluation is not None:
        predicted = predict(model, evaluation, ctx)
        metrics |= {f"{name}_accuracy": float((value == evaluation.targets["label"]).mean())
                    for name, value in predicted.items()}
        metrics["eval_clips"] = len(evaluation)
        print("held-out", {k: round(v, 4) for k, v in metrics.items()}, flush=True)
        if args.metrics_json:
            held_rows = [held[0].rows[i].model_dump() for i in evaluation.rows]
            by_evidence = evidence_breakdown(held_rows, evaluation.targets["label"], predicted["fusion"])
            by_mode = mode_breakdown(held_rows, evaluation.targets["label"], predicted["fusion"])
            report = {**metrics, "fusion_by_evidence": by_evidence, "fusion_by_mode": by_mode,
                      "coefficient_log": history}
            args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
            args.metrics_json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_export:
        export(model.cpu(), tokenizer, labels, view.policy, encoder, args, metrics, history, time.time() - started,
               len(train))
    return 0


def export(model, tokenizer, labels: SingleLabels, input_policy: SamplingPolicy, encoder: ImageEncoder | None, args,
           metrics, history, seconds, clips: int) -> Path:
    rng = np.random.default_rng(args.seed)
    frames = rng.integers(0, 256, (4, input_policy.frames, input_policy.height, input_policy.width, 3), np.uint8)
    title_ids = tokenizer.encode_batch(["breaking news live now", "", "a guide for all seasons", "this week"])
    names = ["timeliness_probs", "visual_probs", "text_probs"]
    with tempfile.TemporaryDirectory() as scratch:
        model_path = Path(scratch) / MODEL_NAME
        if encoder is None:
            export_onnx(model, {"frames": frames, "title_ids": title_ids}, names, model_path)
            metrics["parity_max_abs"] = check_parity(model, model_path, {"frames": frames, "title_ids": title_ids})
            preprocessing = Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3)
        else:
            heads, heads_path = FeatureServing(model, input_policy.frames).eval(), Path(scratch) / "heads.onnx"
            features = rng.standard_normal((4 * input_policy.frames, encoder.dim)).astype(np.float32)
            export_onnx(heads, {FEATURES: features, "title_ids": title_ids}, names, heads_path, opset=encoder.opset)
            merge_engine(encoder, input_policy, heads_path, model_path)
            metrics["parity_max_abs"] = merged_parity(heads, encoder, input_policy, model_path, frames, 1e-4,
                                                      {"title_ids": title_ids})
            preprocessing = encoder_preprocessing(encoder)
        training = TrainingRecord(command=command_line(), seed=args.seed, data_hash=dataset_hash(args.data),
                                  data_clips=clips, seconds=round(seconds, 1), modulation=not args.no_modulation,
                                  modulation_scope=args.modulation_scope, alpha=args.alpha, heads=args.heads, coefficient_log=history, **describe(encoder))
        version_dir = publish_version(
            args.out, "timeliness", {MODEL_NAME: model_path},
            feeds={"frames": FramesFeed(sampling=input_policy), "title_ids": TitleFeed(tokenizer=tokenizer.config())},
            labels={"timeliness": list(labels.labels)},
            preprocessing=preprocessing,
            serving={"ttl_hours": labels.ttl_hours},
            training=training,
            metrics={**({"eval_data_hash": dataset_hash(args.eval_data)} if args.eval_data else {}), **metrics},
            version=args.version,
        )
    print(f"wrote {version_dir}", flush=True)
    return version_dir
