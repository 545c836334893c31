"""``stream-tagger-train ablate early_action``: the memory network's mechanisms (002), on against off.

Per seed, with the same clips, epochs and window for every row:
- ``window_<P>``: the whole recipe (auxiliary network, memory epochs that add correctly classified
  clips, ``--until-correct`` tries) on the first P % of each clip, every frame of that window;
- at the default window: the **bank-only** variants are scored on that run's trained encoder and stored
  memory vectors, so they differ in the bank alone: k-means vs threshold clustering, the reference
  rules (nearest the centre, random, farthest; and the centre itself), random-subset matching, and the
  vote against the encoder's softmax head (averaged over the window, and the last frame's);
- ``growth_off``: the same auxiliary network (a copy taken after its stage), memory epochs with a bank
  that never grows; ``rebuild``: the bank rebuilt each epoch from the correct clips;
- ``gru_<other>``: the other GRU direction, whole recipe;
- the single-frame baseline on the default window.
One JSON per (row, seed) under ``--out``; a finished one is not run again.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

from stream_tagger.sampling import SamplingPolicy
from trainer.ablation.rows import markdown, summarise, write_summary
from trainer.checkpoint import Checkpoints
from trainer.common import seed_everything
from trainer.datasets.format import Dataset
from trainer.datasets.views import FramesView, cached_view
from trainer.distributed import TrainContext
from trainer.early_action.baseline import single_frame_accuracy
from trainer.early_action.memory import (
    BankConfig,
    MemorySchedule,
    bank_from,
    features_of,
    train_memory,
    vote_correct,
)
from trainer.early_action.model import EarlyActionEncoder
from trainer.early_action.train import AUX_FRAME_WEIGHTS, held_out_metrics, train_auxiliary
from trainer.single_label import single_label_clips, single_label_set

WINDOWS = (0.02, 0.05, 0.10, 0.20)
BANK_VARIANTS = {
    "kmeans_nearest": BankConfig(),
    "kmeans_random": BankConfig(rule="random"),
    "kmeans_farthest": BankConfig(rule="farthest"),
    "kmeans_centroid": BankConfig(rule="centroid"),
    "threshold_nearest": BankConfig(clustering="threshold"),
    "threshold_random": BankConfig(clustering="threshold", rule="random"),
    "threshold_farthest": BankConfig(clustering="threshold", rule="farthest"),
    "random_subset": BankConfig(matching="random_subset"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/results/early_action/ablation_v2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--gru", choices=("bi", "uni"), default="uni", help="direction of every row but gru_<other>")
    parser.add_argument("--windows", type=float, nargs="+", default=list(WINDOWS))
    parser.add_argument("--default-window", type=float, default=0.10)
    parser.add_argument("--rows", nargs="*", default=["windows", "growth_off", "gru_other"],
                        help="which rows besides the default window (windows, growth_off, rebuild, gru_other)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--fps", type=float, default=None, help="the clips' frame rate (default: from the manifest)")
    parser.add_argument("--seconds", type=float, default=None, help="the clips' duration (default: from the manifest)")
    # 6 left world v2's encoder at chance (docs/early_action.md); 30 is what its tables were measured with
    parser.add_argument("--aux-epochs", type=int, default=30)
    parser.add_argument("--aux-frame-weights", choices=AUX_FRAME_WEIGHTS, default="uniform")
    parser.add_argument("--memory-epochs", type=int, default=3)
    parser.add_argument("--until-correct", type=int, default=2)
    parser.add_argument("--loader-workers", type=int, default=1)


def window_policy(fraction: float, fps: float, seconds: float, size: int) -> SamplingPolicy:
    """Every frame of the first ``fraction`` of a ``seconds`` long clip at ``fps``."""
    frames = max(1, round(fraction * seconds * fps))
    return SamplingPolicy(frames=frames, height=size, width=size, fraction=fraction, max_seconds=fraction * seconds)


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.ctx = TrainContext.from_args(argparse.Namespace(device="cpu", loader_workers=args.loader_workers,
                                                             threads=None, rank_weights=None))
        self.train_set, self.eval_set = Dataset.load(args.data), Dataset.load(args.eval_data)
        first = self.train_set.rows[0].model_dump()
        self.fps = args.fps or float(first.get("fps") or 0)
        self.seconds = args.seconds or float(first.get("seconds") or 0)
        if not self.fps or not self.seconds:
            raise SystemExit("ablate early_action: the clips' --fps and --seconds are needed (not in the manifest)")
        train_rows = self.train_set.split_rows("train")
        self.labels = single_label_set(self.train_set, train_rows, "early_action", self.ctx.log)
        self._clips: dict[float, tuple] = {}

    def clips(self, fraction: float):
        if fraction not in self._clips:
            view = FramesView(window_policy(fraction, self.fps, self.seconds, self.args.size))
            train = single_label_clips(self.train_set, self.train_set.split_rows("train"), self.labels,
                                       cached_view(self.train_set, view, log=self.ctx.log), self.ctx.log)
            evaluation = single_label_clips(self.eval_set, self.eval_set.split_rows("eval"), self.labels,
                                            cached_view(self.eval_set, view, log=self.ctx.log), self.ctx.log)
            self._clips[fraction] = (train, evaluation)
        return self._clips[fraction]

    def path(self, row: str, seed: int) -> Path:
        return self.args.out / row / f"seed{seed}.json"

    def done(self, row: str, seed: int) -> bool:
        return self.path(row, seed).is_file()

    def write(self, row: str, seed: int, report: dict) -> None:
        path = self.path(row, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        self.ctx.log(f"{row} seed {seed}: " + json.dumps({k: v for k, v in report.items() if isinstance(v, float)}))

    def aux(self, fraction: float, gru: str, seed: int) -> EarlyActionEncoder:
        seed_everything(seed)
        train, _ = self.clips(fraction)
        encoder = EarlyActionEncoder(classes=len(self.labels.labels), gru=gru)
        train_auxiliary(encoder, train, self._stage_args(seed), self.ctx, self._no_checkpoints())
        return encoder

    def memory(self, encoder: EarlyActionEncoder, fraction: float, update: str, seed: int,
               config: BankConfig | None = None):
        config = config or BankConfig()
        train, evaluation = self.clips(fraction)
        bank = bank_from(features_of(encoder, train, self.ctx), train.targets["label"], self.labels.labels, config)
        before = held_out_metrics(encoder, bank, evaluation, config.distance, self.ctx)
        schedule = MemorySchedule(epochs=self.args.memory_epochs, update=update,
                                  until_correct=self.args.until_correct, seed=seed)
        bank, history = train_memory(encoder, train, bank, config, schedule, self.ctx, self._no_checkpoints())
        features = features_of(encoder, evaluation, self.ctx, everywhere=False)
        metrics = held_out_metrics(encoder, bank, evaluation, config.distance, self.ctx, features=features)
        metrics |= {"plain_gru_softmax_accuracy": before["gru_softmax_accuracy"],
                    "plain_gru_softmax_last_frame_accuracy": before["gru_softmax_last_frame_accuracy"],
                    "memory_vote_before_memory_training_accuracy": before["memory_vote_accuracy"],
                    "bank_vectors": len(bank.labels), "memory_history": history,
                    "train_clips": len(train), "eval_clips": len(evaluation)}
        return bank, features, metrics

    def bank_variants(self, bank, features, evaluation) -> dict:
        truth = evaluation.targets["label"]
        out = {}
        for name, config in BANK_VARIANTS.items():
            variant = config.with_vectors_of(bank)
            refs = variant.feeds()["memory_refs"]
            out[name] = {"memory_vote_accuracy": float(vote_correct(features, truth, variant, config.distance).mean()),
                         "references": len(refs)}
        return out

    def full(self, row: str, fraction: float, gru: str, seed: int, update: str = "add",
             encoder: EarlyActionEncoder | None = None, variants: bool = False, extra: dict | None = None) -> None:
        started = time.monotonic()
        encoder = encoder if encoder is not None else self.aux(fraction, gru, seed)
        bank, features, metrics = self.memory(encoder, fraction, update, seed)
        if variants:
            metrics["bank_variants"] = self.bank_variants(bank, features, self.clips(fraction)[1])
        metrics |= {"window_fraction": fraction, "frames": self.clips(fraction)[0].source.item_shape[0], "gru": gru,
                    "memory_update": update, "seconds": round(time.monotonic() - started, 1), **(extra or {})}
        self.write(row, seed, metrics)

    def _stage_args(self, seed: int) -> argparse.Namespace:
        return argparse.Namespace(aux_epochs=self.args.aux_epochs, aux_frame_weights=self.args.aux_frame_weights,
                                  seed=seed)

    @staticmethod
    def _no_checkpoints() -> Checkpoints:
        return Checkpoints(None, "ablation", resume=False, is_main=True)


def run(args: argparse.Namespace) -> int:
    runner = Runner(args)
    other = "bi" if args.gru == "uni" else "uni"
    default_row = f"window_{round(args.default_window * 100):g}"
    for seed in args.seeds:
        wanted = [default_row, *(["growth_off"] if "growth_off" in args.rows else []),
                  *(["rebuild"] if "rebuild" in args.rows else [])]
        if not all(runner.done(r, seed) for r in wanted):
            encoder = runner.aux(args.default_window, args.gru, seed)
            after_aux = copy.deepcopy(encoder.state_dict())
            if not runner.done(default_row, seed):
                train, evaluation = runner.clips(args.default_window)
                baseline = single_frame_accuracy(train, evaluation, len(runner.labels.labels), None, args.aux_epochs,
                                                 seed, runner.ctx, runner._no_checkpoints())
                runner.full(default_row, args.default_window, args.gru, seed, encoder=encoder, variants=True,
                            extra={"single_frame_baseline_accuracy": baseline})
            for row, update in (("growth_off", "none"), ("rebuild", "rebuild")):
                if row in wanted and not runner.done(row, seed):
                    encoder.load_state_dict(after_aux)
                    runner.full(row, args.default_window, args.gru, seed, update=update, encoder=encoder,
                                variants=True)
        if "windows" in args.rows:
            for fraction in args.windows:
                row = f"window_{round(fraction * 100):g}"
                if row != default_row and not runner.done(row, seed):
                    runner.full(row, fraction, args.gru, seed)
        if "gru_other" in args.rows and not runner.done(f"gru_{other}", seed):
            runner.full(f"gru_{other}", args.default_window, other, seed, variants=True)
    rows = sorted(p.name for p in args.out.iterdir() if p.is_dir()) if args.out.is_dir() else []
    metrics = ["memory_vote_accuracy", "gru_softmax_accuracy", "gru_softmax_last_frame_accuracy",
               "memory_vote_before_memory_training_accuracy", "single_frame_baseline_accuracy"]
    metrics += [f"bank_variants.{name}.memory_vote_accuracy" for name in BANK_VARIANTS]
    summary = summarise(args.out, rows, metrics)
    write_summary(args.out, summary, metrics, "stream-tagger-train ablate early_action " + shlex.join(sys.argv[3:]))
    print(markdown(summary, metrics[:5]))
    return 0

