"""``stream-tagger-train train early_action``: memory-network early-action predictor → engine version.

1. Auxiliary network: the CNN+GRU encoder with a softmax head, trained on every frame's state.
2. Memory bank from its features of the labelled training clips (per class k-means, references).
3. Memory training: features of clips the vote gets wrong are pulled toward their class's references
   (softmax over negative distances); after each epoch the bank is rebuilt from the current features of
   the correctly classified clips.
A single-frame classifier is trained too, as the baseline that proves the task needs early motion.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from stream_tagger.engines.manifest import (
    MEMORY_NAME,
    MODEL_NAME,
    ConstantFeed,
    FramesFeed,
    Preprocessing,
    TrainingRecord,
)
from stream_tagger.engines.memory_bank import REFERENCE_RULES, MemoryBank
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import SamplingPolicy
from trainer.data import load_dataset, load_frames
from trainer.early_action.model import EarlyActionEncoder, MemoryVoteModel, memory_logits
from trainer.export import check_parity, command_line, dataset_hash, export_onnx
from trainer.timeliness.model import MEAN, STD, FrameCNN
from video_world.labels import EARLY_ACTIONS

BATCH = 32
CLASSES = len(EARLY_ACTIONS)


def policy(fraction: float) -> SamplingPolicy:
    return SamplingPolicy(frames=8, height=96, width=96, fraction=fraction, max_seconds=1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("engines"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.1, help="early window as a fraction of the clip")
    parser.add_argument("--aux-epochs", type=int, default=12)
    parser.add_argument("--memory-epochs", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=4, help="k-means clusters (references) per class")
    parser.add_argument("--rule", choices=REFERENCE_RULES, default="nearest_center")
    parser.add_argument("--distance", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--no-export", action="store_true")


def load_split(directory: Path, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray([EARLY_ACTIONS.index(row["early_action"]) for row in load_dataset(directory)], np.int64)
    return load_frames(directory, policy(fraction), progress=True), labels


def batches(count: int, rng: np.random.Generator):
    order = rng.permutation(count)
    for start in range(0, count, BATCH):
        yield np.sort(order[start:start + BATCH])


def tensor(frames: np.ndarray, index) -> torch.Tensor:
    return torch.from_numpy(np.array(frames[index]))


def train_auxiliary(encoder: EarlyActionEncoder, split, epochs: int, rng) -> None:
    frames, labels = split
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for epoch in range(epochs):
        encoder.train()
        losses = []
        for index in batches(len(labels), rng):
            logits = encoder.softmax_head(encoder(tensor(frames, index)))  # [B, T, C]
            y = torch.from_numpy(labels[index])[:, None].expand(-1, logits.shape[1])
            loss = F.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        print(f"aux epoch {epoch:2d} loss {np.mean(losses):.3f}", flush=True)


def features_of(encoder: EarlyActionEncoder, frames: np.ndarray) -> np.ndarray:
    encoder.eval()
    with torch.no_grad():
        return np.concatenate([encoder(tensor(frames, slice(s, s + 128))).numpy() for s in range(0, len(frames), 128)])


def vote_predictions(model: MemoryVoteModel, frames: np.ndarray, bank: MemoryBank) -> np.ndarray:
    feeds = {k: torch.from_numpy(v) for k, v in bank.feeds().items()}
    model.eval()
    with torch.no_grad():
        shares = [model(tensor(frames, slice(s, s + 128)), feeds["memory_refs"], feeds["memory_labels"])[0].numpy()
                  for s in range(0, len(frames), 128)]
    return np.concatenate(shares).argmax(1)


def bank_from(encoder, split, args, keep: np.ndarray | None = None) -> MemoryBank:
    """Memory of the clips in ``keep`` (default all); a class with no kept clip keeps all of its clips."""
    frames, labels = split
    keep = np.ones(len(labels), bool) if keep is None else keep.copy()
    for c in range(CLASSES):
        if not keep[labels == c].any():
            keep[labels == c] = True
    feats = features_of(encoder, frames)[keep]
    frame_labels = np.repeat(labels[keep], feats.shape[1])
    return MemoryBank.build(feats.reshape(-1, feats.shape[-1]), frame_labels, list(EARLY_ACTIONS),
                            clusters_per_class=args.clusters, rule=args.rule)


def train_memory(model: MemoryVoteModel, split, bank: MemoryBank, args, rng) -> MemoryBank:
    frames, labels = split
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=5e-4, weight_decay=1e-4)
    for epoch in range(args.memory_epochs):
        model.train()
        feeds = {k: torch.from_numpy(v) for k, v in bank.feeds().items()}
        for index in batches(len(labels), rng):
            x, y = tensor(frames, index), torch.from_numpy(labels[index])
            shares, _, features = model(x, feeds["memory_refs"], feeds["memory_labels"])
            wrong = (shares.argmax(1) != y).float()[:, None].expand(-1, features.shape[1])
            logits = memory_logits(features, feeds["memory_refs"], feeds["memory_labels"], CLASSES, args.distance)
            frame_y = y[:, None].expand(-1, features.shape[1])
            per_frame = F.cross_entropy(logits.reshape(-1, CLASSES), frame_y.reshape(-1), reduction="none")
            aux = F.cross_entropy(model.encoder.softmax_head(features).reshape(-1, CLASSES), frame_y.reshape(-1))
            loss = (per_frame * (0.1 + wrong.reshape(-1))).mean() + 0.5 * aux  # misclassified clips pulled hardest
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        correct = vote_predictions(model, frames, bank) == labels
        bank = bank_from(model.encoder, split, args, keep=correct)
        print(f"memory epoch {epoch} train vote acc {correct.mean():.3f} bank {len(bank.labels)} vectors", flush=True)
    return bank


class SingleFrameBaseline(nn.Module):
    """The first frame of the window only: what can be guessed without seeing motion."""

    def __init__(self):
        super().__init__()
        self.cnn, self.head = FrameCNN(64), nn.Linear(64, CLASSES)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.cnn(frames[:, :1])[:, 0])


def single_frame_accuracy(train, held_out, epochs: int, rng) -> float:
    model = SingleFrameBaseline()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        for index in batches(len(train[1]), rng):
            loss = F.cross_entropy(model(tensor(train[0], index)), torch.from_numpy(train[1][index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = np.concatenate([model(tensor(held_out[0], slice(s, s + 128))).argmax(1).numpy()
                                    for s in range(0, len(held_out[1]), 128)])
    return float((predicted == held_out[1]).mean())


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    train, held_out = load_split(args.data, args.fraction), load_split(args.eval_data, args.fraction)
    started = time.time()
    encoder = EarlyActionEncoder(classes=CLASSES)
    train_auxiliary(encoder, train, args.aux_epochs, rng)
    model = MemoryVoteModel(encoder, CLASSES, args.distance)
    initial_bank = bank_from(encoder, train, args)
    # The ablation pair before memory training: a plain GRU softmax classifier, and the vote on its features
    before = held_out_metrics(model, initial_bank, held_out)
    bank = train_memory(model, train, initial_bank, args, rng)
    metrics = held_out_metrics(model, bank, held_out)
    metrics |= {"plain_gru_softmax_accuracy": before["gru_softmax_accuracy"],
                "memory_vote_before_memory_training_accuracy": before["memory_vote_accuracy"]}
    metrics["single_frame_baseline_accuracy"] = single_frame_accuracy(train, held_out, args.aux_epochs, rng)
    print("held-out", {k: round(v, 4) for k, v in metrics.items()}, flush=True)
    if not args.no_export:
        export(model, bank, args, metrics, time.time() - started, held_out, len(train[1]))
    return 0


def held_out_metrics(model: MemoryVoteModel, bank: MemoryBank, held_out) -> dict[str, float]:
    frames, labels = held_out
    feats = features_of(model.encoder, frames)
    with torch.no_grad():  # the softmax head's logits averaged over the window's frames
        softmax = model.encoder.softmax_head(torch.from_numpy(feats)).mean(dim=1).argmax(1).numpy()
    return {"memory_vote_accuracy": float((vote_predictions(model, frames, bank) == labels).mean()),
            "gru_softmax_accuracy": float((softmax == labels).mean())}


def export(model, bank: MemoryBank, args, metrics, seconds, held_out, clips) -> Path:
    feeds = {"frames": np.array(held_out[0][:4]), **bank.feeds()}
    with tempfile.TemporaryDirectory() as scratch:
        model_path, bank_path = Path(scratch) / MODEL_NAME, Path(scratch) / MEMORY_NAME
        export_onnx(model, feeds, ["action_probs", "frame_votes", "features"], model_path,
                    shared_inputs=("memory_refs", "memory_labels"))
        metrics["parity_max_abs"] = check_parity(model, model_path, feeds)
        bank.save(bank_path)
        training = TrainingRecord(command=command_line(), seed=args.seed, data_hash=dataset_hash(args.data),
                                  data_clips=clips, seconds=round(seconds, 1), aux_epochs=args.aux_epochs,
                                  memory_epochs=args.memory_epochs)
        version_dir = publish_version(
            args.out, "early_action", {MODEL_NAME: model_path, MEMORY_NAME: bank_path},
            feeds={"frames": FramesFeed(sampling=policy(args.fraction)),
                   "memory_refs": ConstantFeed(file=MEMORY_NAME, key="refs"),
                   "memory_labels": ConstantFeed(file=MEMORY_NAME, key="ref_labels")},
            labels={"early_action": list(EARLY_ACTIONS)},
            preprocessing=Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3),
            serving={"vote": "majority of per-frame nearest references", "distance": args.distance,
                     "clusters_per_class": args.clusters, "reference_rule": args.rule},
            training=training, metrics={"eval_data_hash": dataset_hash(args.eval_data), **metrics},
            version=args.version,
        )
    print(f"wrote {version_dir}", flush=True)
    return version_dir
