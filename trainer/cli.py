"""``stream-tagger-train``: make data, train, evaluate, export and build engines.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from trainer.datasets.format import DatasetError

# (command words, module, help)
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("make-dataset",), "video_world.dataset", "render a deterministic synthetic dataset"),
    (("make-photo-clips",), "trainer.photo_clips", "pan/zoom clips of real photographs, one folder per class"),
    (("import", "folders"), "trainer.importers.folders", "import a folder-per-category tree"),
    (("import", "csv"), "trainer.importers.csv_file", "import a CSV of manifest fields"),
    (("import", "kinetics"), "trainer.importers.kinetics", "import a Kinetics annotation CSV + local videos"),
    (("train", "classifier"), "trainer.classifier.train", "train + export the distilled classifier"),
    (("train", "timeliness"), "trainer.timeliness.train", "train + export the timeliness model"),
    (("train", "early_action"), "trainer.early_action.train", "train + export the early-action predictor"),
    (("train", "quality"), "trainer.quality.train", "train the classifier's fragment quality branch + export"),
    (("ablate", "classifier"), "trainer.ablation.classifier", "label-teacher mechanisms on vs off, several seeds"),
    (("ablate", "timeliness"), "trainer.ablation.timeliness", "gradient modulation and heads on vs off, several seeds"),
    (("ablate", "early_action"), "trainer.ablation.early_action", "memory-network mechanisms on vs off, several seeds"),
    (("ablate", "quality"), "trainer.ablation.quality", "quality distillation mechanisms on vs off, several seeds"),
    (("attach-quality",), "trainer.quality.attach", "carry a fragment quality branch onto another classifier version"),
    (("evaluate", "classifier"), "trainer.classifier.evaluate", "evaluate a classifier engine"),
    (("evaluate", "timeliness"), "trainer.timeliness.evaluate", "evaluate a timeliness engine"),
    (("evaluate", "early_action"), "trainer.early_action.evaluate", "evaluate an early-action engine"),
    (("evaluate", "quality-ladder"), "trainer.quality.ladder",
     "quality score vs bitrate on real photographs (JSON + plot)"),
    (("reencode",), "trainer.reencode", "copy a dataset with its clips re-encoded as uploads are (B-frames, deblocking)"),
    (("adopt-decode",), "trainer.adopt_decode", "serve an engine with another decode setting if accuracy holds"),
    (("fold-motion-stem",), "trainer.early_action.fold",
     "fold an early-action graph's pixel preprocessing into its first convolution (same outputs, less CPU)"),
    (("build-engines",), "trainer.build_engines", "build TensorRT plans for every engine (GPU)"),
]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-tagger-train", description=__doc__.splitlines()[0])
    groups: dict[str, argparse._SubParsersAction] = {}
    top = parser.add_subparsers(dest="command", required=True)
    for words, module, help_text in COMMANDS:
        if len(words) == 1:
            top.add_parser(words[0], help=help_text)
        else:
            if words[0] not in groups:
                noun = "a dataset" if words[0] == "import" else "an engine" if words[0] != "ablate" else "a trainer"
                group_parser = top.add_parser(words[0], help=f"{words[0]} {noun}")
                groups[words[0]] = group_parser.add_subparsers(dest="engine", required=True)
            groups[words[0]].add_parser(words[1], help=help_text)
    return parser


def _match_command(argv: list[str]) -> tuple[tuple[str, ...], str] | None:
    for words, module, _ in COMMANDS:
        if tuple(argv[: len(words)]) == words:
            return words, module
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    matched = _match_command(argv)
    if matched is None:  # no full command: the overview parser prints help or the usage error
        _build_parser().parse_args(argv)
        return 2
    words, module_name = matched
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog="stream-tagger-train " + " ".join(words))
    module.add_arguments(parser)
    args = parser.parse_args(argv[len(words):])
    try:
        return int(module.run(args) or 0)
    except DatasetError as exc:  # bad input is a clear line, never a traceback
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
