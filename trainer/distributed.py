"""Where a training run executes: device, torchrun ranks (DistributedDataParallel) and loader workers.

``torchrun --nproc-per-node N stream-tagger-train train ...`` starts N ranks; each reads its share of
every epoch (a DistributedSampler), gradients are averaged by DDP (gloo on CPU, nccl on CUDA), and
rank 0 alone evaluates, checkpoints and publishes. Without torchrun the same code runs one rank.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from torch import nn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the networks train")
    parser.add_argument("--loader-workers", type=int, default=2, help="DataLoader worker processes per rank")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per rank (default: 2 shared by the ranks, at least 1)")
    parser.add_argument("--rank-weights", type=Path, default=None,
                        help="every rank writes its final weights to DIR/rank<k>.pt (to check that DDP kept them equal)")


@dataclass
class TrainContext:
    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    loader_workers: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        if args.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is visible to torch")
        device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else "cpu")
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.set_num_threads(args.threads or max(1, 2 // world))
        return cls(device, rank, world, local_rank, args.loader_workers)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def log(self, *parts: object) -> None:
        if self.is_main:
            print(*parts, flush=True)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to run forward through: DDP across ranks (only trainable parameters synchronised)."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (so every rank takes the same stopping decision)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(tensor)
        return float(tensor.item() / self.world)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks (a CPU tensor back, whatever the backend needs)."""
        if not self.distributed:
            return tensor
        moved = tensor.to(self._collective_device)
        dist.all_reduce(moved)
        return moved.cpu()

    def gather_rows(self, positions: np.ndarray, values: np.ndarray, total: int) -> np.ndarray:
        """Reassemble per-rank results ``values`` (at ``positions``) into one ``[total, ...]`` array, on every rank."""
        if not self.distributed:
            out = np.empty((total, *values.shape[1:]), values.dtype)
            out[positions] = values
            return out
        parts: list = [None] * self.world
        dist.all_gather_object(parts, (positions, values))
        out = np.empty((total, *values.shape[1:]), values.dtype)
        for part_positions, part_values in parts:
            out[part_positions] = part_values
        return out

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, module: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank.

        DDP broadcasts buffers at the start of each forward, so after an epoch's last forward each rank
        holds the statistics of its own last batch; this makes the checkpointed and exported state one.
        """
        if not self.distributed:
            return
        for buffer in unwrap(module).buffers():
            moved = buffer.data.to(self._collective_device)
            dist.broadcast(moved, src=0)
            buffer.data.copy_(moved)

    def save_rank_weights(self, folder: Path | None, modules: dict[str, nn.Module]) -> None:
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({name: {k: v.detach().cpu() for k, v in unwrap(m).state_dict().items()} for name, m in modules.items()},
                   folder / f"rank{self.rank}.pt")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def run_in_context(train: Callable[[argparse.Namespace, TrainContext], int], args: argparse.Namespace) -> int:
    """``train(args, ctx)`` inside this process's rank context, closed (process group left) however it ends."""
    ctx = TrainContext.from_args(args)
    try:
        return train(args, ctx)
    finally:
        ctx.close()
