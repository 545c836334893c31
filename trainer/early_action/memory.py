"""The memory network's training side: the bank built from features, the vote, and the memory epochs.

Follows the memory-network document (``shared/seeds/002``):
- the bank starts from the auxiliary network's features of the labelled training clips (¶49–52);
- each clip is classified by the vote (claims 2–4); a misclassified clip's parameters are adjusted and
  it is classified again, until it is right or ``until_correct`` tries are spent (claim 5);
- the frame features of a clip at the moment it is classified correctly are *added* to its class's
  memory (claim 6, ``update="add"``; the bank then holds vectors of several encoder states, bounded
  per class first-in first-out); ``"rebuild"`` replaces the bank after each epoch by the current
  features of the correctly classified clips (this project's earlier rule), ``"none"`` keeps the
  initial bank (no memory growth).
The references are re-derived once per epoch (clustering + reference rule of ``BankConfig``): the
vectors added during an epoch vote from the next epoch on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from stream_tagger.engines.memory_bank import MemoryBank, vote
from trainer.datasets.clips import ClipSet, clip_loader, rank_positions, to_device
from trainer.distributed import TrainContext
from trainer.early_action.model import EarlyActionEncoder, MemoryTraining, distances, memory_logits
from trainer.loop import run_stage

MEMORY_UPDATES = ("add", "rebuild", "none")
BATCH = 32


@dataclass(frozen=True)
class BankConfig:
    """How a bank turns stored vectors into references (``MemoryBank`` fields), and the vote's distance."""

    clusters_per_class: int = 4
    rule: str = "nearest_center"
    clustering: str = "kmeans"
    cluster_threshold: float = 1.0
    max_clusters: int = 64
    matching: str = "references"
    subset_size: int = 32
    max_per_class: int = 4096
    distance: str = "euclidean"

    def bank_fields(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "distance"}

    def build(self, vectors: np.ndarray, labels: np.ndarray, classes: list[str]) -> MemoryBank:
        """A bank of ``vectors`` ``[M, D]`` with ``labels`` ``[M]``."""
        return MemoryBank.build(vectors, labels, classes, **self.bank_fields())

    def with_vectors_of(self, bank: MemoryBank) -> MemoryBank:
        """``bank``'s stored vectors under this configuration (the bank-only ablations)."""
        return self.build(bank.features, bank.labels, bank.classes)


def batch_inputs(batch: dict, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
    batch = to_device(batch, ctx)
    x = batch["inputs"]
    return (x if x.dtype == torch.uint8 else x.float()), batch["label"]


@torch.no_grad()
def features_of(encoder: EarlyActionEncoder, clips: ClipSet, ctx: TrainContext, everywhere: bool = True) -> np.ndarray:
    """Per-frame features ``[N, T, dim]`` of every clip (ranks share the work unless ``everywhere`` is False)."""
    encoder.eval()
    positions = rank_positions(len(clips), ctx) if everywhere else np.arange(len(clips))
    local = TrainContext(ctx.device, loader_workers=ctx.loader_workers)
    parts = [encoder(batch_inputs(batch, ctx)[0]).cpu().numpy()
             for batch in clip_loader(clips.subset(positions), 128, local, shuffle=False)]
    values = np.concatenate(parts) if parts else np.zeros((0, 1, 1), np.float32)
    return ctx.gather_rows(positions, values, len(clips)) if everywhere else values


def bank_from(features: np.ndarray, labels: np.ndarray, classes: list[str], config: BankConfig,
              keep: np.ndarray | None = None) -> MemoryBank:
    """Memory of the clips in ``keep`` (default all); a class with no kept clip keeps all of its clips."""
    keep = np.ones(len(labels), bool) if keep is None else keep.copy()
    for c in range(len(classes)):
        if not keep[labels == c].any():
            keep[labels == c] = True
    kept = features[keep]
    return config.build(kept.reshape(-1, kept.shape[-1]), np.repeat(labels[keep], kept.shape[1]), classes)


def vote_correct(features: np.ndarray, labels: np.ndarray, bank: MemoryBank, distance: str) -> np.ndarray:
    """Per clip: does the majority of the frames' nearest references name the true class?"""
    feeds = bank.feeds()
    _, shares = vote(features, feeds["memory_refs"], feeds["memory_labels"], len(bank.classes), distance)
    return shares.argmax(1) == labels


class BankState:
    """The memory bank as a checkpointable object (rebuilt from its stored vectors on resume)."""

    def __init__(self, bank: MemoryBank, config: BankConfig):
        self.bank, self.config = bank, config

    def state_dict(self) -> dict:
        return {"features": self.bank.features, "labels": self.bank.labels}

    def load_state_dict(self, state: dict) -> None:
        self.bank = self.config.build(state["features"], state["labels"], self.bank.classes)


@dataclass(frozen=True)
class MemorySchedule:
    epochs: int = 5
    update: str = "add"
    #: Optimisation steps a batch gets at most while some of its clips are still misclassified (claim 5).
    until_correct: int = 3
    lr: float = 5e-4
    seed: int = 0


def _in_graph_vote_wrong(features: torch.Tensor, y: torch.Tensor, feeds: dict, classes: int, distance: str) -> torch.Tensor:
    """Per clip (bool): the majority of the frames' nearest references is not the label."""
    nearest = feeds["memory_labels"][distances(features, feeds["memory_refs"], distance).argmin(-1)]
    return F.one_hot(nearest, classes).float().mean(1).argmax(1) != y


def train_memory(encoder: EarlyActionEncoder, clips: ClipSet, bank: MemoryBank, config: BankConfig,
                 schedule: MemorySchedule, ctx: TrainContext, checkpoints) -> tuple[MemoryBank, list[dict]]:
    """The memory epochs; returns the final bank and one record per epoch."""
    if schedule.update not in MEMORY_UPDATES:
        raise ValueError(f"unknown memory update {schedule.update!r}; use one of {MEMORY_UPDATES}")
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=schedule.lr, weight_decay=1e-4)
    holder, classes, labels = BankState(bank, config), len(bank.classes), clips.targets["label"]

    def epoch_fn(epoch: int) -> dict:
        wrapped = ctx.wrap(MemoryTraining(encoder))
        wrapped.train()
        feeds = {k: torch.from_numpy(v).to(ctx.device) for k, v in holder.bank.feeds().items()}
        added = {}  # position -> the clip's frame features when the vote first got it right
        steps, tries = 0, []
        for batch in clip_loader(clips, BATCH, ctx, schedule.seed, 1000 + epoch):
            x, y = batch_inputs(batch, ctx)
            positions = batch["position"].numpy()
            pending = torch.ones(len(y), dtype=torch.bool, device=y.device)  # not yet classified right
            for attempt in range(schedule.until_correct):
                features, softmax_logits = wrapped(x)
                with torch.no_grad():
                    wrong = _in_graph_vote_wrong(features, y, feeds, classes, config.distance)
                    for i in np.flatnonzero((pending & ~wrong).cpu().numpy()):
                        added[int(positions[i])] = features[i].detach().cpu().numpy()
                    pending &= wrong
                # every rank takes the same number of steps (DDP): stop when no rank has a wrong clip
                if attempt > 0 and float(ctx.sum(pending.sum().double().cpu().reshape(1))[0]) == 0:
                    break
                frame_y = y[:, None].expand(-1, features.shape[1]).reshape(-1)
                logits = memory_logits(features, feeds["memory_refs"], feeds["memory_labels"], classes, config.distance)
                per_frame = F.cross_entropy(logits.reshape(-1, classes), frame_y, reduction="none")
                aux = F.cross_entropy(softmax_logits.reshape(-1, classes), frame_y, reduction="none")
                if attempt == 0:  # every clip: the wrong ones pulled hardest, the right ones held in place
                    weight = (0.1 + pending.float())[:, None].expand(-1, features.shape[1]).reshape(-1)
                    loss = (per_frame * weight).mean() + 0.5 * aux.mean()
                else:  # a retry moves the clips that are still wrong, only
                    weight = pending.float()[:, None].expand(-1, features.shape[1]).reshape(-1)
                    loss = ((per_frame + 0.5 * aux) * weight).sum() / weight.sum().clamp(min=1.0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
            tries.append(attempt + 1)
        record = {"steps": steps, "mean_tries": round(float(np.mean(tries)) if tries else 0.0, 3),
                  "right_at_some_try": round(len(added) / max(len(clips), 1), 4)}
        if schedule.update == "add":
            holder.bank = _with_additions(holder.bank, added, labels, ctx, len(clips), clips.source.item_shape[0])
        features = features_of(encoder, clips, ctx)
        correct = vote_correct(features, labels, holder.bank, config.distance)
        if schedule.update == "rebuild":
            holder.bank = bank_from(features, labels, holder.bank.classes, config, keep=correct)
        holder.bank.feeds()  # re-derive the references once per epoch
        record |= {"train_vote_accuracy": round(float(correct.mean()), 4), "bank_vectors": len(holder.bank.labels)}
        return record

    history = run_stage("memory", {"model": encoder, "optimizer": optimizer, "bank": holder}, schedule.epochs,
                        epoch_fn, ctx, checkpoints)
    return holder.bank, history


def _with_additions(bank: MemoryBank, added: dict[int, np.ndarray], labels: np.ndarray, ctx: TrainContext,
                    total: int, frames: int) -> MemoryBank:
    """``bank`` plus every rank's correctly classified clips, added in clip order (the same bank on every rank)."""
    positions = np.array(sorted(added), np.int64)
    values = (np.stack([added[int(p)] for p in positions]) if len(positions)
              else np.zeros((0, frames, bank.features.shape[1]), np.float32))
    mask = np.zeros(total, np.float64)
    mask[positions] = 1.0
    if ctx.distributed:
        mask = ctx.sum(torch.from_numpy(mask)).numpy()
    gathered = ctx.gather_rows(positions, values, total)
    for position in np.flatnonzero(mask > 0):
        bank.add(gathered[position], int(labels[position]))
    return bank
