"""The epoch loop every stage of every trainer runs: resume, train, agree on the loss, checkpoint, stop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from trainer.checkpoint import Checkpoints
from trainer.common import Convergence
from trainer.distributed import TrainContext

EpochFn = Callable[[int], dict[str, Any]]


def run_stage(name: str, stateful: dict[str, Any], epochs: int, epoch_fn: EpochFn, ctx: TrainContext,
              checkpoints: Checkpoints, stop: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """Run ``epoch_fn(epoch)`` for up to ``epochs`` epochs; returns one record per epoch.

    ``stateful`` maps names to objects with ``state_dict``/``load_state_dict`` (modules, optimisers,
    schedules, a :class:`Convergence`): they are checkpointed after each epoch and restored on resume.
    Each record's ``loss`` is averaged over ranks before ``stop(record)`` decides, so all ranks stop
    together. A finished stage found in the checkpoints is loaded and not run again.
    """
    history: list[dict[str, Any]] = []
    start = 0
    state = checkpoints.load(name)
    if state is not None:
        for key, obj in stateful.items():
            obj.load_state_dict(state["state"][key])
        history, start = state["history"], state["epoch"] + 1
        if state["done"]:
            ctx.log(f"{name}: finished in the checkpoint, loaded")
            return history
        ctx.log(f"{name}: resuming after epoch {state['epoch']}")
    for epoch in range(start, epochs):
        record = epoch_fn(epoch)
        for obj in stateful.values():
            if isinstance(obj, torch.nn.Module):
                ctx.sync_buffers(obj)
        if "loss" in record:
            record["loss"] = round(ctx.mean(float(record["loss"])), 5)
        history.append({"epoch": epoch, **record})
        done = (stop(record) if stop else False) or epoch == epochs - 1
        ctx.log(f"{name} epoch {epoch}: " + " ".join(f"{k} {v}" for k, v in record.items()))
        checkpoints.save(name, {"state": {k: v.state_dict() for k, v in stateful.items()}, "history": history,
                                "epoch": epoch, "done": done})
        if done:
            break
    return history


def convergence_stop(rule: Convergence) -> Callable[[dict[str, Any]], bool]:
    return lambda record: rule.update(record["loss"])


def epoch_generator(seed: int, stage: str, epoch: int, rank: int) -> torch.Generator:
    """Augmentation randomness of one epoch on one rank: the same after a resume."""
    digest = sum((i + 1) * ord(c) for i, c in enumerate(stage))
    return torch.Generator().manual_seed((seed * 1_000_003 + digest * 7919 + epoch * 131 + rank) % (2**63))
