"""``stream-tagger-train ablate classifier``: the label-teacher mechanisms (000), on against off.

Rows (every one with the same data, epochs and seeds; quality is ablated separately on the measured
quality world, ``ablate quality``):

- ``alternating_hard``: the engine's recipe: label teacher on the noisy tags, student distilled from its
  hard labels (thresholded at 0.5), alternating whole tag and category epochs;
- ``alternating_soft``: the same with the teacher's probabilities as targets;
- ``noisy_tags``: the student's tag epochs on the noisy training tags (no label teacher);
- ``joint``: tag and category losses summed in every epoch instead of alternating;
- ``category_only``: category epochs only (the tag head never trains);
- ``no_tags``: the dataset's tags ignored (no teacher, no tag head: a plain category classifier).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from trainer.ablation.rows import Row, Table, markdown, write_summary

ROWS = [
    Row("alternating_hard", ("--teacher-targets", "hard"), shares=("label_teacher", "teacher_tags")),
    Row("alternating_soft", ("--teacher-targets", "soft"), shares=("label_teacher", "teacher_tags")),
    Row("noisy_tags", ("--student-tags", "noisy")),
    Row("joint", ("--schedule", "joint"), shares=("label_teacher", "teacher_tags")),
    Row("category_only", ("--schedule", "category-only", "--student-tags", "noisy")),
    Row("no_tags", ("--student-tags", "none")),
]
METRICS = ["category_accuracy", "tag_map", "tag_micro_f1", "teacher_tag_map"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/results/classifier/ablation_v2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", nargs="*", help="run only these rows")
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--student-epochs", type=int, default=16)
    parser.add_argument("--extra", default="", help="more flags for every row (quoted)")


def run(args: argparse.Namespace) -> int:
    base = ["--data", str(args.data), "--eval-data", str(args.eval_data), "--no-export", "--quality", "none",
            "--teacher-epochs", str(args.teacher_epochs), "--student-epochs", str(args.student_epochs),
            *shlex.split(args.extra)]
    table = Table("trainer.classifier.train", args.out, base, ROWS, args.seeds, METRICS)
    table.run(args.rows)
    summary = table.summary()
    write_summary(args.out, summary, METRICS, "stream-tagger-train ablate classifier " + shlex.join(sys.argv[3:]))
    print(markdown(summary, METRICS))
    return 0
