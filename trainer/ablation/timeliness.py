"""``stream-tagger-train ablate timeliness``: gradient modulation (001) and per-modality heads, on against off.

Rows (same data, epochs and seeds):
- ``own_all_heads``: the engine's recipe: each encoder trained by its own head and by the fusion head;
  modulation scales only the gradient from the modality's own loss (claims 3-6);
- ``off_all_heads``: no modulation;
- ``whole_all_heads``: modulation scales the encoder's whole gradient, the fusion loss's included
  (this project's earlier rule);
- ``off_fusion_only``: only the fusion loss reaches the encoders, no modulation;
- ``whole_fusion_only``: fusion loss only, its gradient modulated.
(Modulating the own-loss gradient with fusion-only heads is no modulation at all: no own-loss
gradient reaches the encoders; that row would repeat ``off_fusion_only``.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from trainer.ablation.rows import Row, Table, markdown, write_summary

ROWS = [
    Row("own_all_heads", ("--modulation-scope", "own", "--heads", "all")),
    Row("off_all_heads", ("--no-modulation", "--heads", "all")),
    Row("whole_all_heads", ("--modulation-scope", "all", "--heads", "all")),
    Row("off_fusion_only", ("--no-modulation", "--heads", "fusion")),
    Row("whole_fusion_only", ("--modulation-scope", "all", "--heads", "fusion")),
]
METRICS = ["fusion_accuracy", "visual_accuracy", "text_accuracy", "fusion_by_mode.joint.accuracy",
           "fusion_by_mode.visual.accuracy", "fusion_by_mode.title.accuracy"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/results/timeliness/ablation_v2"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", nargs="*", help="run only these rows")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--extra", default="", help="more flags for every row (quoted)")


def run(args: argparse.Namespace) -> int:
    base = ["--data", str(args.data), "--eval-data", str(args.eval_data), "--no-export", "--epochs", str(args.epochs),
            *shlex.split(args.extra)]
    table = Table("trainer.timeliness.train", args.out, base, ROWS, args.seeds, METRICS)
    table.run(args.rows)
    summary = table.summary()
    write_summary(args.out, summary, METRICS, "stream-tagger-train ablate timeliness " + shlex.join(sys.argv[3:]))
    print(markdown(summary, METRICS))
    return 0
