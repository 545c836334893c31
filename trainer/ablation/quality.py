"""``stream-tagger-train ablate quality``: the quality-distillation mechanisms (003), on against off.

Runs ``train quality`` (the classifier's fragment quality branch on the measured-quality world of
docs/quality.md) per row, same data, epochs and seeds:
- ``gated_selected``: the recipe: teachers chosen by claims 8-9, a gate on each teacher's initial
  feature, the student's head on its projected feature;
- ``gated_all``: teacher selection off (every candidate is a gated teacher);
- ``single``: the selected best teacher alone;
- ``none``: the student on the grades only (no teacher);
- ``gate_projected``: the gate reads the concatenated projected features;
- ``head_trunk``: the student's head classifies its trunk feature.
Every row with teachers trains the same candidates (pre-trained, probed, fine-tuned) for a seed; only
the choice among them and their use differ, so the candidates' stages are trained once per seed and
shared by the later rows.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from trainer.ablation.rows import Row, Table, markdown, write_summary
from trainer.classifier.selection import candidate_library, candidate_stages
from trainer.quality.train import ENERGY_TEACHER

CANDIDATES = candidate_stages([*candidate_library(2), ENERGY_TEACHER])
ROWS = [
    Row("gated_selected", ("--quality", "gated"), shares=CANDIDATES),
    Row("gated_all", ("--quality", "gated", "--teacher-selection", "off"), shares=CANDIDATES),
    Row("single", ("--quality", "single"), shares=CANDIDATES),
    Row("none", ("--quality", "none")),
    Row("gate_projected", ("--quality", "gated", "--gate-input", "projected"), shares=CANDIDATES),
    Row("head_trunk", ("--quality", "gated", "--quality-head-on", "trunk"), shares=CANDIDATES),
]
METRICS = ["quality_accuracy", "gated_teachers_accuracy"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/results/classifier/quality_ablation_v2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", nargs="*", help="run only these rows")
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--extra", default="", help="more flags for every row (quoted)")


def run(args: argparse.Namespace) -> int:
    base = ["--data", str(args.data), "--eval-data", str(args.eval_data), "--no-export",
            "--teacher-epochs", str(args.teacher_epochs), "--student-epochs", str(args.student_epochs),
            *shlex.split(args.extra)]
    table = Table("trainer.quality.train", args.out, base, ROWS, args.seeds, METRICS)
    table.run(args.rows)
    summary = table.summary()
    write_summary(args.out, summary, METRICS, "stream-tagger-train ablate quality " + shlex.join(sys.argv[3:]))
    print(markdown(summary, METRICS))
    return 0
