"""Run ablation rows through a trainer's own CLI, one JSON per (row, seed), and summarise them.

A row is a name and the trainer flags that make it differ from the others; every row of a table gets
the same base flags (data, budget), so the budget is the same for every row. A finished (row, seed)
keeps its JSON and is not run again, so an interrupted ablation resumes where it stopped. Stages that
do not depend on a row's flags (the label teacher of a seed) can be shared between rows: their
checkpoints are copied into the next row's checkpoint folder and the row resumes past them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trainer.checkpoint import run_key


@dataclass(frozen=True)
class Row:
    name: str
    flags: tuple[str, ...] = ()
    #: checkpointed stages this row may take from an earlier row of the same seed (same inputs)
    shares: tuple[str, ...] = ()
    description: str = ""


@dataclass
class Table:
    engine_module: str  # e.g. trainer.classifier.train
    out: Path  # docs/results/<engine>/ablation_v2
    base: list[str]  # flags every row gets (data, budget, --no-export)
    rows: list[Row]
    seeds: list[int]
    metrics: list[str]  # keys of the metrics JSON shown in the summary
    log: Callable[[str], None] = print
    shared_from: dict[tuple[int, str], Path] = field(default_factory=dict)

    def json_path(self, row: Row, seed: int) -> Path:
        return self.out / row.name / f"seed{seed}.json"

    def run(self, only: Sequence[str] | None = None) -> None:
        module = importlib.import_module(self.engine_module)
        for seed in self.seeds:
            for row in self.rows:
                if only and row.name not in only:
                    continue
                self._run_one(module, row, seed)

    def _run_one(self, module, row: Row, seed: int) -> None:
        target = self.json_path(row, seed)
        checkpoint_dir = self.out / ".checkpoints" / row.name / f"seed{seed}"
        if target.is_file():
            self.log(f"{row.name} seed {seed}: done earlier ({target})")
            for stage in row.shares:
                self.shared_from.setdefault((seed, stage), checkpoint_dir)
            return
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        argv = [*self.base, *row.flags, "--seed", str(seed), "--metrics-json", str(target),
                "--checkpoint-dir", str(checkpoint_dir)]
        args = parser.parse_args(argv)
        shared = [stage for stage in row.shares if (seed, stage) in self.shared_from]
        if shared:
            _share(self.shared_from, seed, shared, checkpoint_dir, args)
            args.resume = True
        self.log(f"{row.name} seed {seed}: {' '.join(argv)}" + (f" (shares {shared})" if shared else ""))
        started = time.monotonic()
        module.run(args)
        seconds = round(time.monotonic() - started, 1)
        if target.is_file():  # the trainer wrote its metrics: add what the table needs to reproduce it
            report = json.loads(target.read_text())
            report["ablation"] = {"row": row.name, "seed": seed, "flags": list(row.flags), "base": self.base,
                                  "seconds": seconds, "shared_stages": shared}
            target.write_text(json.dumps(report, indent=2) + "\n")
        for stage in row.shares:
            self.shared_from.setdefault((seed, stage), checkpoint_dir)
        self.log(f"{row.name} seed {seed}: {seconds} s")

    def summary(self) -> dict:
        return summarise(self.out, [r.name for r in self.rows], self.metrics)


def _share(shared_from: dict, seed: int, stages: list[str], checkpoint_dir: Path, args: argparse.Namespace) -> None:
    """Copy the stages' checkpoints into a fresh folder keyed for ``args`` (the row then resumes past them)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    checkpoint_dir.mkdir(parents=True)
    for stage in stages:
        source = shared_from[(seed, stage)] / f"{stage.replace('/', '__')}.pt"
        if source.is_file():
            shutil.copy2(source, checkpoint_dir / source.name)
    (checkpoint_dir / "run.json").write_text(json.dumps({"run_key": run_key(args)}) + "\n")


def lookup(report: dict, key: str):
    value = report
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def summarise(out: Path, rows: Sequence[str], metrics: Sequence[str]) -> dict:
    """Per row and metric: the values of every seed recorded under ``out``, their mean and sample std, and n.

    Every seed on disk, not only the current run's: an ablation is completed by runs for a few seeds at
    a time, and each one rewrites the summary."""
    table = {}
    for name in rows:
        found = {int(p.stem.removeprefix("seed")): p for p in (out / name).glob("seed*.json")}
        reports = {seed: json.loads(found[seed].read_text()) for seed in sorted(found)}
        entry = {"n": len(reports), "seeds": sorted(reports)}
        for metric in metrics:
            values = [v for r in reports.values() if isinstance(v := lookup(r, metric), int | float)]
            entry[metric] = {"values": values, "mean": statistics.fmean(values) if values else None,
                             "std": statistics.stdev(values) if len(values) > 1 else None}
        table[name] = entry
    return table


def markdown(table: dict, metrics: Sequence[str], labels: dict[str, str] | None = None) -> str:
    """The summary as a markdown table: mean ± std (n) per cell."""
    labels = labels or {}
    lines = ["| row | " + " | ".join(metrics) + " | n |", "|---" * (len(metrics) + 2) + "|"]
    for name, entry in table.items():
        cells = []
        for metric in metrics:
            cell = entry[metric]
            if cell["mean"] is None:
                cells.append("—")
            elif cell["std"] is None:
                cells.append(f"{cell['mean']:.3f}")
            else:
                cells.append(f"{cell['mean']:.3f} ± {cell['std']:.3f}")
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + f" | {entry['n']} |")
    return "\n".join(lines)


def write_summary(out: Path, table: dict, metrics: Sequence[str], command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(json.dumps({"command": command, "rows": table}, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(table, metrics) + "\n")
    return path
