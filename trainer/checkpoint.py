"""A checkpoint after every epoch of every stage, and ``--resume`` from the last one.

A run is a sequence of named stages (the label teacher, each quality teacher, the student...). After
each epoch rank 0 writes ``<dir>/<stage>.pt`` atomically: the stage's modules, optimiser, schedule,
convergence rule, history and whether the stage is done. ``--resume`` skips finished stages (their
weights are loaded) and continues an unfinished one after its last saved epoch; artefacts computed
between stages (a teacher's predictions) are checkpointed the same way. A checkpoint records the
command's training arguments and is refused by a run whose arguments differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: Arguments that do not change what is trained (where it runs, where it goes, how it is reported).
NOT_TRAINING = {"resume", "checkpoint_dir", "out", "version", "metrics_json", "no_export", "loader_workers",
                "device", "threads", "eval_data", "rank_weights"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="where per-epoch checkpoints go (default: DATA/.cache/checkpoints/<engine>)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints of an interrupted run")


class Checkpoints:
    def __init__(self, folder: Path | None, run_key: str, resume: bool, is_main: bool):
        self.folder, self.run_key, self.is_main = folder, run_key, is_main
        if folder is None:
            return
        key_file = folder / "run.json"
        if resume and key_file.is_file():
            recorded = json.loads(key_file.read_text())["run_key"]
            if recorded != run_key:
                raise SystemExit(f"--resume: {folder} holds checkpoints of a run with other training arguments")
        elif is_main:
            shutil.rmtree(folder, ignore_errors=True)  # a fresh run never picks up an old run's state
            folder.mkdir(parents=True, exist_ok=True)
            key_file.write_text(json.dumps({"run_key": run_key}) + "\n")

    @classmethod
    def for_run(cls, args: argparse.Namespace, engine: str, ctx) -> Checkpoints:
        """The run's checkpoints; every rank returns only once rank 0 has cleared or checked them."""
        folder = args.checkpoint_dir or Path(args.data) / ".cache" / "checkpoints" / engine
        checkpoints = cls(folder, run_key(args), args.resume, ctx.is_main)
        ctx.barrier()
        return checkpoints

    def load(self, stage: str) -> dict[str, Any] | None:
        path = self._path(stage)
        if path is None or not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def save(self, stage: str, state: dict[str, Any]) -> None:
        path = self._path(stage)
        if path is None or not self.is_main:
            return
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save(state, partial)
        os.replace(partial, path)

    def artefact(self, name: str, compute: Callable[[], Any]) -> Any:
        """The checkpointed value of ``name``, computed (and saved) when there is none."""
        state = self.load(name)
        if state is not None:
            return state["value"]
        value = compute()
        self.save(name, {"value": value})
        return value

    def _path(self, stage: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{stage.replace('/', '__')}.pt"


def run_key(args: argparse.Namespace) -> str:
    relevant = {k: str(v) for k, v in sorted(vars(args).items()) if k not in NOT_TRAINING}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
