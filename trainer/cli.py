"""``stream-tagger-train``: make data, train, evaluate, export and build engines.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (command words, module, help)
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("make-dataset",), "video_world.dataset", "render a deterministic synthetic dataset"),
    (("train", "classifier"), "trainer.classifier.train", "train + export the distilled classifier"),
    (("train", "timeliness"), "trainer.timeliness.train", "train + export the timeliness model"),
    (("train", "early_action"), "trainer.early_action.train", "train + export the early-action predictor"),
    (("evaluate", "classifier"), "trainer.classifier.evaluate", "evaluate a classifier engine"),
    (("evaluate", "timeliness"), "trainer.timeliness.evaluate", "evaluate a timeliness engine"),
    (("evaluate", "early_action"), "trainer.early_action.evaluate", "evaluate an early-action engine"),
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
                group_parser = top.add_parser(words[0], help=f"{words[0]} an engine")
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
    return int(module.run(parser.parse_args(argv[len(words):])) or 0)


if __name__ == "__main__":
    sys.exit(main())
