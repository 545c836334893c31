"""``stream-tagger-train attach-quality``: a trained fragment quality branch onto another classifier version.

    stream-tagger-train attach-quality --from engines/classifier/3 --base engines/classifier/4 --out engines

The quality branch and the category/tag graph are trained apart (they read different inputs), so
when the category/tag side is retrained and published again, the quality branch of an earlier
version is carried over as it is: its subgraph (``fragments`` → ``quality_probs``) is cut out of the
``--from`` version's ONNX graph and attached to the ``--base`` version's. No torch, no retraining;
the manifest records both origins.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import onnx.utils

from stream_tagger.engines.manifest import MODEL_NAME, EngineManifest, FragmentsFeed, TrainingRecord
from stream_tagger.engines.repository import list_versions, publish_version
from stream_tagger.sampling import FragmentPolicy
from trainer.datasets.format import DatasetError
from trainer.export import command_line
from trainer.quality.compose import FRAGMENTS_INPUT, QUALITY_OUTPUT, attach_quality


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", type=Path, required=True,
                        help="a classifier version with a fragments input (its quality branch is carried over)")
    parser.add_argument("--base", type=Path, help="the classifier version to attach it to (default: the newest "
                        "classifier under --out without a fragments input)")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="engine repository root")
    parser.add_argument("--version", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    source = EngineManifest.load(args.source)
    policy = fragments_policy(source)
    if policy is None:
        raise DatasetError(f"{args.source}: no fragments input, so no quality branch to carry over")
    base = args.base or newest_plain(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        branch = Path(scratch) / "quality.onnx"
        onnx.utils.extract_model(str(args.source / MODEL_NAME), str(branch), [FRAGMENTS_INPUT], [QUALITY_OUTPUT])
        training = {"command": command_line(), "seed": source.training.seed, "data_hash": source.training.data_hash,
                    "data_clips": source.training.data_clips, "quality_branch_from": source.ref}
        published = publish_attached(args.out, base, branch, policy, source.labels["quality"], training,
                                     {**source.metrics.get("quality", {}), "branch_from": source.ref},
                                     {"quality_branch_from": source.ref}, args.version, Path(scratch))
    print(f"wrote {published}")
    return 0


def fragments_policy(manifest: EngineManifest) -> FragmentPolicy | None:
    return next((spec.feed.fragments for spec in manifest.inputs if isinstance(spec.feed, FragmentsFeed)), None)


def newest_plain(engines_root: Path) -> Path:
    """The newest classifier version without a fragments input (what a quality branch attaches to)."""
    plain = [path for _, path in list_versions(Path(engines_root) / "classifier")
             if fragments_policy(EngineManifest.load(path)) is None]
    if not plain:
        raise DatasetError(f"{engines_root}/classifier has no version to attach the quality branch to (use --base)")
    return plain[-1]


def publish_attached(out: Path, base: Path, branch: Path, policy: FragmentPolicy, grades: list[str],
                     training: Mapping[str, Any], quality_metrics: Mapping[str, Any], extra_metrics: Mapping[str, Any],
                     version: int | None, scratch: Path) -> Path:
    """Publish ``base`` with the quality ``branch`` graph attached: inputs frames + fragments."""
    manifest = EngineManifest.load(base)
    merged = attach_quality(base / MODEL_NAME, branch, scratch / MODEL_NAME)
    feeds = {spec.name: spec.feed for spec in manifest.inputs} | {FRAGMENTS_INPUT: FragmentsFeed(fragments=policy)}
    carried = {key: value for key, value in manifest.metrics.items() if not key.startswith("quality")}
    return publish_version(
        out, "classifier", {MODEL_NAME: merged}, feeds=feeds, labels={**manifest.labels, "quality": list(grades)},
        preprocessing=manifest.preprocessing, serving=manifest.serving,
        training=TrainingRecord(**training, base=manifest.ref, base_training=manifest.training.model_dump()),
        metrics={**carried, "category_and_tags_from": manifest.ref, "quality": dict(quality_metrics),
                 **extra_metrics},
        version=version,
    )
