"""The single-frame baseline: what can be guessed about the coming manoeuvre without seeing motion."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trainer.datasets.clips import ClipSet, clip_loader
from trainer.distributed import TrainContext
from trainer.early_action.memory import BATCH, batch_inputs
from trainer.loop import run_stage
from trainer.timeliness.model import FrameCNN


class SingleFrameBaseline(nn.Module):
    """The first frame of the window only."""

    def __init__(self, classes: int, features_dim: int | None = None):
        super().__init__()
        self.cnn = FrameCNN(64) if features_dim is None else nn.Sequential(
            nn.LayerNorm(features_dim), nn.Linear(features_dim, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.cnn(frames[:, :1])[:, 0])


def single_frame_accuracy(train: ClipSet, evaluation: ClipSet, classes: int, features_dim: int | None, epochs: int,
                          seed: int, ctx: TrainContext, checkpoints) -> float:
    model = SingleFrameBaseline(classes, features_dim).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)

    def epoch_fn(epoch: int) -> dict:
        wrapped = ctx.wrap(model)
        wrapped.train()
        losses = []
        for batch in clip_loader(train, BATCH, ctx, seed, 2000 + epoch):
            x, y = batch_inputs(batch, ctx)
            loss = F.cross_entropy(wrapped(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return {"loss": round(float(np.mean(losses)), 4)}

    run_stage("single_frame", {"model": model, "optimizer": optimizer}, epochs, epoch_fn, ctx, checkpoints)
    model.eval()
    local = TrainContext(ctx.device, loader_workers=ctx.loader_workers)
    with torch.no_grad():
        predicted = [model(batch_inputs(b, ctx)[0]).argmax(1).cpu().numpy()
                     for b in clip_loader(evaluation, 128, local, shuffle=False)]
    return float((np.concatenate(predicted) == evaluation.targets["label"]).mean())
