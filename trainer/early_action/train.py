"""``stream-tagger-train train early_action``: memory-network early-action predictor → engine version.

1. Auxiliary network: the CNN+GRU encoder with a softmax head, trained on every frame's state.
2. Memory bank from its features of the labelled training clips (per class clustering, references).
3. Memory epochs (``trainer.early_action.memory``): each batch is classified by the vote; misclassified
   clips are pulled toward their class's references (softmax over negative distances) and classified
   again, up to ``--until-correct`` tries; the features of each clip the vote gets right are added to
   its class's memory (``--memory-update add``; or the bank is rebuilt each epoch, or kept).
A single-frame classifier is trained too, as the baseline that proves the task needs early motion.
The actions come from the dataset (taxonomy ``actions``, else its rows).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.nn import functional as F

from stream_tagger.engines.manifest import (
    MEMORY_NAME,
    MODEL_NAME,
    ConstantFeed,
    FramesFeed,
    Preprocessing,
    TrainingRecord,
)
from stream_tagger.engines.memory_bank import CLUSTERINGS, MATCHINGS, REFERENCE_RULES, MemoryBank
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import SamplingPolicy
from trainer import checkpoint, distributed, policy
from trainer.checkpoint import Checkpoints
from trainer.common import seed_everything
from trainer.datasets.clips import ClipSet, clip_loader
from trainer.datasets.format import DatasetError
from trainer.datasets.views import FramesView
from trainer.distributed import TrainContext
from trainer.early_action.baseline import single_frame_accuracy
from trainer.early_action.fold import fold_motion_stem
from trainer.early_action.memory import (
    BATCH,
    MEMORY_UPDATES,
    BankConfig,
    MemorySchedule,
    bank_from,
    batch_inputs,
    features_of,
    train_memory,
    vote_correct,
)
from trainer.early_action.model import (
    GRU_DIRECTIONS,
    AuxiliaryLogits,
    EarlyActionEncoder,
    FeatureServing,
    MemoryVoteModel,
)
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
from trainer.single_label import training_and_held_out
from trainer.timeliness.model import MEAN, STD

#: ``ramp``: a unidirectional GRU's first frames have seen none of the cues, and asking them for the
#: clip's label teaches the encoder to recognise the clip instead of the cue.
AUX_FRAME_WEIGHTS = ("uniform", "ramp")
POLICY = SamplingPolicy(frames=8, height=96, width=96, fraction=0.1, max_seconds=1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, help="held-out dataset (default: --data's rows marked split=eval)")
    parser.add_argument("--out", type=Path, default=Path("engines"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aux-epochs", type=int, default=12)
    parser.add_argument("--memory-epochs", type=int, default=5)
    parser.add_argument("--aux-frame-weights", choices=AUX_FRAME_WEIGHTS, default="uniform",
                        help="the auxiliary network's per-frame loss: every frame alike, or growing with the "
                             "frame's place in the window (ramp: frame t of T weighs (t+1)/T)")
    bank = BankConfig()
    parser.add_argument("--gru", choices=GRU_DIRECTIONS, default="bi",
                        help="bi: every frame's feature sees the whole window; uni: frames 0..t only")
    parser.add_argument("--memory-update", choices=MEMORY_UPDATES, default="rebuild",
                        help="add: correctly classified clips' features join the memory (claim 6); rebuild: "
                             "the bank is rebuilt each epoch from the correct clips; none: the initial bank stays")
    parser.add_argument("--until-correct", type=int, default=1,
                        help="tries per batch while some clip is misclassified (claim 5; 1 = one step)")
    parser.add_argument("--clustering", choices=CLUSTERINGS, default=bank.clustering,
                        help="per-class clustering: k-means, or a distance threshold (claim 3)")
    parser.add_argument("--clusters", type=int, default=bank.clusters_per_class, help="k-means clusters per class")
    parser.add_argument("--cluster-threshold", type=float, default=bank.cluster_threshold,
                        help="threshold clustering: distance that opens a new cluster, × the class's RMS spread")
    parser.add_argument("--rule", choices=REFERENCE_RULES, default=bank.rule,
                        help="reference vector of a cluster (claim 4): nearest to / farthest from the centre, "
                             "a random member, or the centre")
    parser.add_argument("--matching", choices=MATCHINGS, default=bank.matching,
                        help="references: one per cluster; random_subset: --subset-size random memory vectors "
                             "per class (¶59)")
    parser.add_argument("--subset-size", type=int, default=bank.subset_size)
    parser.add_argument("--max-per-class", type=int, default=bank.max_per_class, help="memory vectors per class")
    parser.add_argument("--distance", choices=("euclidean", "cosine"), default=bank.distance)
    parser.add_argument("--metrics-json", type=Path, help="also write the held-out metrics here")
    parser.add_argument("--encoder", type=Path, help="pretrained image encoder FILE.onnx (+ FILE.json sidecar)")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--no-export", action="store_true")
    policy.add_arguments(parser, POLICY)
    distributed.add_arguments(parser)
    checkpoint.add_arguments(parser)


def frame_weights(frames: int, kind: str, device) -> torch.Tensor:
    """Per-frame loss weights [T], mean 1 (so the learning rate means the same for both kinds)."""
    if kind not in AUX_FRAME_WEIGHTS:
        raise ValueError(f"unknown frame weights {kind!r}; use one of {AUX_FRAME_WEIGHTS}")
    weights = torch.ones(frames) if kind == "uniform" else torch.arange(1, frames + 1, dtype=torch.float32)
    return (weights / weights.mean()).to(device)


def train_auxiliary(encoder: EarlyActionEncoder, clips: ClipSet, args, ctx: TrainContext, checkpoints) -> list:
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.aux_epochs)
    classes = encoder.softmax_head.out_features

    def epoch_fn(epoch: int) -> dict:
        wrapped = ctx.wrap(AuxiliaryLogits(encoder))
        wrapped.train()
        losses = []
        for batch in clip_loader(clips, BATCH, ctx, args.seed, epoch):
            x, y = batch_inputs(batch, ctx)
            logits = wrapped(x)  # [B, T, C]
            per_frame = F.cross_entropy(logits.reshape(-1, classes), y[:, None].expand(-1, logits.shape[1]).reshape(-1),
                                        reduction="none").reshape(logits.shape[:2])
            loss = (per_frame * frame_weights(logits.shape[1], args.aux_frame_weights, per_frame.device)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        return {"loss": round(float(np.mean(losses)), 4)}

    return run_stage("auxiliary", {"model": encoder, "optimizer": optimizer, "schedule": schedule}, args.aux_epochs,
                     epoch_fn, ctx, checkpoints)


def bank_config(args) -> BankConfig:
    return BankConfig(clusters_per_class=args.clusters, rule=args.rule, clustering=args.clustering,
                      cluster_threshold=args.cluster_threshold, matching=args.matching, subset_size=args.subset_size,
                      max_per_class=args.max_per_class, distance=args.distance)


def held_out_metrics(encoder: EarlyActionEncoder, bank: MemoryBank, evaluation: ClipSet, distance: str, ctx,
                     features: np.ndarray | None = None) -> dict:
    """The vote, and the encoder's softmax head (logits averaged over the window, and the last frame's)."""
    features = features_of(encoder, evaluation, ctx, everywhere=False) if features is None else features
    truth = evaluation.targets["label"]
    with torch.no_grad():
        logits = encoder.softmax_head(torch.from_numpy(features).to(ctx.device)).cpu().numpy()
    return {"memory_vote_accuracy": float(vote_correct(features, truth, bank, distance).mean()),
            "gru_softmax_accuracy": float((logits.mean(axis=1).argmax(1) == truth).mean()),
            "gru_softmax_last_frame_accuracy": float((logits[:, -1].argmax(1) == truth).mean())}


def run(args: argparse.Namespace) -> int:
    return distributed.run_in_context(_run, args)


def _run(args: argparse.Namespace, ctx: TrainContext) -> int:
    seed_everything(args.seed)
    encoder_onnx = ImageEncoder.load(args.encoder) if args.encoder else None
    input_policy = policy.policy_from_args(args, POLICY)
    view = encoder_onnx.features_view(input_policy) if encoder_onnx else FramesView(input_policy)
    _, labels, train, held, evaluation = training_and_held_out(args.data, args.eval_data, "early_action",
                                                               view, ctx)
    if held is None:
        raise DatasetError("early_action needs held-out rows: --eval-data, or rows marked split=eval")
    checkpoints = Checkpoints.for_run(args, "early_action", ctx)
    started, features_dim = time.time(), encoder_onnx.dim if encoder_onnx else None
    encoder = EarlyActionEncoder(classes=len(labels.labels), features_dim=features_dim, gru=args.gru).to(ctx.device)
    config = bank_config(args)
    train_auxiliary(encoder, train, args, ctx, checkpoints)
    initial_bank = bank_from(features_of(encoder, train, ctx), train.targets["label"], labels.labels, config)
    # The ablation pair before memory training: a plain GRU softmax classifier, and the vote on its features
    before = held_out_metrics(encoder, initial_bank, evaluation, args.distance, ctx) if ctx.is_main else {}
    schedule = MemorySchedule(epochs=args.memory_epochs, update=args.memory_update, until_correct=args.until_correct,
                              seed=args.seed)
    bank, memory_history = train_memory(encoder, train, initial_bank, config, schedule, ctx, checkpoints)
    baseline = single_frame_accuracy(train, evaluation, len(labels.labels), features_dim, args.aux_epochs, args.seed,
                                     ctx, checkpoints)
    ctx.save_rank_weights(args.rank_weights, {"encoder": encoder})
    if not ctx.is_main:
        return 0
    metrics = held_out_metrics(encoder, bank, evaluation, args.distance, ctx)
    metrics |= {"plain_gru_softmax_accuracy": before["gru_softmax_accuracy"],
                "plain_gru_softmax_last_frame_accuracy": before["gru_softmax_last_frame_accuracy"],
                "memory_vote_before_memory_training_accuracy": before["memory_vote_accuracy"],
                "single_frame_baseline_accuracy": baseline, "train_clips": len(train), "eval_clips": len(evaluation)}
    print("held-out", {k: round(v, 4) for k, v in metrics.items()}, flush=True)
    if args.metrics_json:
        args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_json.write_text(json.dumps({**metrics, "memory_history": memory_history}, indent=2) + "\n")
    if not args.no_export:
        model = MemoryVoteModel(encoder.cpu(), len(labels.labels), args.distance)
        export(model, bank, view.policy, encoder_onnx, args, metrics, time.time() - started, len(train))
    return 0


def export(model: MemoryVoteModel, bank: MemoryBank, input_policy: SamplingPolicy, encoder: ImageEncoder | None,
           args, metrics, seconds, clips: int) -> Path:
    rng = np.random.default_rng(args.seed)
    frames = rng.integers(0, 256, (4, input_policy.frames, input_policy.height, input_policy.width, 3), np.uint8)
    names = ["action_probs", "frame_votes", "features"]
    shared = ("memory_refs", "memory_labels")
    with tempfile.TemporaryDirectory() as scratch:
        model_path, bank_path = Path(scratch) / MODEL_NAME, Path(scratch) / MEMORY_NAME
        if encoder is None:
            feeds = {"frames": frames, **bank.feeds()}
            export_onnx(model, feeds, names, model_path, shared_inputs=shared)
            onnx.save(fold_motion_stem(onnx.load(str(model_path))), str(model_path))  # same outputs, ~half the CPU
            metrics["parity_max_abs"] = check_parity(model, model_path, feeds)
            preprocessing = Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3)
        else:
            heads, heads_path = FeatureServing(model, input_policy.frames).eval(), Path(scratch) / "heads.onnx"
            features = rng.standard_normal((4 * input_policy.frames, encoder.dim)).astype(np.float32)
            export_onnx(heads, {FEATURES: features, **bank.feeds()}, names, heads_path, shared_inputs=shared,
                        opset=encoder.opset)
            merge_engine(encoder, input_policy, heads_path, model_path)
            metrics["parity_max_abs"] = merged_parity(heads, encoder, input_policy, model_path, frames, 1e-4,
                                                      bank.feeds())
            preprocessing = encoder_preprocessing(encoder)
        bank.save(bank_path)
        training = TrainingRecord(command=command_line(), seed=args.seed, data_hash=dataset_hash(args.data),
                                  data_clips=clips, seconds=round(seconds, 1), aux_epochs=args.aux_epochs,
                                  memory_epochs=args.memory_epochs, gru=args.gru, memory_update=args.memory_update,
                                  until_correct=args.until_correct, **describe(encoder))
        version_dir = publish_version(
            args.out, "early_action", {MODEL_NAME: model_path, MEMORY_NAME: bank_path},
            feeds={"frames": FramesFeed(sampling=input_policy),
                   "memory_refs": ConstantFeed(file=MEMORY_NAME, key="refs"),
                   "memory_labels": ConstantFeed(file=MEMORY_NAME, key="ref_labels")},
            labels={"early_action": list(bank.classes)},
            preprocessing=preprocessing,
            serving={"vote": "majority of per-frame nearest references", "distance": args.distance,
                     "clusters_per_class": args.clusters, "reference_rule": args.rule, "clustering": args.clustering,
                     "matching": args.matching},
            training=training,
            metrics={**({"eval_data_hash": dataset_hash(args.eval_data)} if args.eval_data else {}), **metrics},
            version=args.version,
        )
    print(f"wrote {version_dir}", flush=True)
    return version_dir
