"""``stream-tagger-train adopt-decode``: serve an engine with other decode settings, if accuracy holds.

    stream-tagger-train adopt-decode --engine engines/classifier/2 --data data/eval --deblock off \\
        --json docs/results/decode/classifier.json [--decode reference] [--max-drop 0.01] [--publish]

Evaluates the engine version twice on the held-out set with its own evaluator — as published, and
with every frame policy of its manifest given ``--decode`` / ``--deblock`` (the variant's frames are
decoded by the serving decoder with those settings, so the figures are what the worker would get) — and
compares the headline figures. Within ``--max-drop`` (absolute, 0.01 = 1 point) on every one of them,
``--publish`` publishes the same files as a new version whose manifest declares the setting and
carries both evaluations. Nothing else changes: graph, memory bank, labels, serving parameters.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import get_args

from stream_tagger.engines.manifest import MANIFEST_NAME, EngineManifest, FragmentsFeed, FramesFeed
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import DecodeSetting

#: The figures each engine's evaluation is judged by (keys of its ``evaluate`` JSON).
HEADLINE = {
    "classifier": ("category_accuracy", "tag_map", "quality_accuracy"),
    "timeliness": ("accuracy", "visual_accuracy"),
    "early_action": ("accuracy",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", type=Path, required=True, help="engine version folder, e.g. engines/classifier/2")
    parser.add_argument("--data", type=Path, required=True, help="held-out dataset (rows with split eval or none)")
    parser.add_argument("--decode", choices=get_args(DecodeSetting),
                        help="frames decoded: all; needed (the same pictures, fewer frames decoded); "
                             "reference (no non-reference frame)")
    parser.add_argument("--deblock", choices=("on", "off"), help="H.264/HEVC deblocking filter: on, or skipped")
    parser.add_argument("--json", type=Path, required=True, help="where to write both evaluations and the verdict")
    parser.add_argument("--max-drop", type=float, default=0.01, help="largest drop allowed per figure (default 0.01)")
    parser.add_argument("--publish", action="store_true", help="publish the new version when accuracy holds")


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    manifest = EngineManifest.load(args.engine)
    with tempfile.TemporaryDirectory(prefix="adopt-decode-") as scratch:
        variant_dir = Path(scratch) / "variant" / manifest.engine / str(manifest.version)
        _write_variant(args.engine, manifest, settings, variant_dir)
        before = _evaluate(manifest.engine, args.engine, args.data, Path(scratch) / "before")
        after = _evaluate(manifest.engine, variant_dir, args.data, Path(scratch) / "after")
        report = verdict(manifest.engine, before, after, args.max_drop) | {
            "engine": manifest.ref, "data": str(args.data), "settings": settings,
        }
        if args.publish and report["adopted"]:
            report["published"] = str(_publish(args.engine, variant_dir, report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "evaluations"}, indent=2))
    return 0 if report["adopted"] else 1


def verdict(engine: str, before: dict, after: dict, max_drop: float) -> dict:
    """Per headline figure: before, after, drop; adopted when no figure drops by more than ``max_drop``."""
    figures = {}
    for key in HEADLINE[engine]:
        if key in before and key in after:
            figures[key] = {"before": before[key], "after": after[key], "drop": round(before[key] - after[key], 4)}
    return {
        "figures": figures,
        "max_drop": max_drop,
        "adopted": bool(figures) and all(f["drop"] <= max_drop for f in figures.values()),
        "evaluations": {"before": before, "after": after},
    }


def settings_of(args: argparse.Namespace) -> dict:
    """The policy fields to change, from the flags (at least one)."""
    settings = {}
    if args.decode is not None:
        settings["decode"] = args.decode
    if args.deblock is not None:
        settings["deblock"] = args.deblock == "on"
    if not settings:
        raise SystemExit("adopt-decode: give --decode and/or --deblock")
    return settings


def _write_variant(source: Path, manifest: EngineManifest, settings: dict, target: Path) -> None:
    """The version's files with every frame policy of its manifest given ``settings``."""
    target.mkdir(parents=True)
    for name in manifest.sha256:
        shutil.copyfile(source / name, target / name)
    inputs = [spec.model_copy(update={"feed": _with_settings(spec.feed, settings)}) for spec in manifest.inputs]
    (target / MANIFEST_NAME).write_text(manifest.model_copy(update={"inputs": inputs}).to_json())
    EngineManifest.load(target)  # the variant is a valid manifest


def _with_settings(feed, settings: dict):
    if isinstance(feed, FramesFeed):
        return feed.model_copy(update={"sampling": feed.sampling.model_copy(update=settings)})
    if isinstance(feed, FragmentsFeed):
        return feed.model_copy(update={"fragments": feed.fragments.model_copy(update=settings)})
    return feed


def _evaluate(engine: str, version_dir: Path, data: Path, out: Path) -> dict:
    """The engine's own ``stream-tagger-train evaluate``, its pictures kept out of docs/."""
    module = importlib.import_module(f"trainer.{engine}.evaluate")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    argv = ["--engine", str(version_dir), "--data", str(data), "--json", str(out / "eval.json"),
            "--png-dir", str(out), "--results", str(out)]  # each evaluator knows one of the last two
    module.run(parser.parse_known_args(argv)[0])
    return json.loads((out / "eval.json").read_text())


def _publish(source: Path, variant_dir: Path, report: dict) -> Path:
    """The variant as the engine's next version: same files, the manifest with the setting and figures."""
    variant = EngineManifest.load(variant_dir)
    training = variant.training.model_dump() | {"decode_adopted_from": report["engine"]}
    metrics = variant.metrics | {"decode_adoption": {k: report[k] for k in ("settings", "data", "figures", "max_drop")}}
    return publish_version(
        source.parent.parent,
        variant.engine,
        {name: source / name for name in variant.sha256},
        feeds={spec.name: spec.feed for spec in variant.inputs},
        labels=variant.labels,
        training=training,
        preprocessing=variant.preprocessing,
        serving=variant.serving,
        metrics=metrics,
    )
