"""``stream-tagger-train build-engines``: TensorRT plans for every engine version, on this GPU.

For each ``engines/<engine>/<version>/model.onnx`` it builds an FP32 plan (dynamic batch profile
1..--max-batch, timing cache kept beside the plans) and, when evaluation data is given and this
TensorRT has the FP16 builder flag (10.x), an FP16 plan. The FP16 plan is kept only if, on the
evaluation frames, every float output stays within ``--fp16-tolerance`` (max absolute difference)
of the FP32 plan and integer outputs (votes) disagree on at most that fraction of elements.
TensorRT 11.x is strongly typed: FP16 would have to come from an FP16 ONNX graph, so it builds FP32.
The decision goes to ``plans/precision.json``; the worker builds the same precision on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from stream_tagger.engines.manifest import ENGINE_NAMES, MANIFEST_NAME, MODEL_NAME, EngineManifest
from stream_tagger.engines.repository import EngineInputs, list_versions
from stream_tagger.engines.runtime import plans, tensorrt_available

DEFAULT_TOLERANCE = 0.01
NEEDS_GPU = (
    "build-engines needs an NVIDIA GPU with TensorRT and pycuda (pip install 'stream-tagger[gpu]'); "
    "none is usable here. Run it on the GPU machine (docs/gpu.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engines", type=Path, default=Path("engines"), help="engine repository")
    parser.add_argument(
        "--fp16-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="max |FP16 - FP32| on float outputs (and max share of differing votes)",
    )
    parser.add_argument(
        "--eval-data",
        type=Path,
        default=None,
        help="dataset dir (make-dataset) whose frames validate FP16; without it: FP32 only",
    )
    parser.add_argument("--eval-clips", type=int, default=64, help="evaluation clips used for the FP16 check")
    parser.add_argument("--max-batch", type=int, default=plans.DEFAULT_MAX_BATCH, help="profile's max batch")


def run(args: argparse.Namespace) -> int:
    if not tensorrt_available():
        print(NEEDS_GPU, file=sys.stderr)
        return 2
    versions = version_dirs(args.engines)
    if not versions:
        print(
            f"no engine version with {MODEL_NAME} and {MANIFEST_NAME} under {args.engines}", file=sys.stderr
        )
        return 2
    gpu = plans.current_gpu()
    for version_dir in versions:
        decision = build_version(version_dir, EngineManifest.load(version_dir), gpu, args)
        print(json.dumps({"version_dir": str(version_dir), "plan": gpu.plan_name, **decision}))
    return 0


def version_dirs(engines: Path) -> list[Path]:
    """Every complete version of every engine, by engine then number."""
    return [path for name in ENGINE_NAMES for _, path in list_versions(engines / name)]


def build_version(version_dir: Path, manifest: EngineManifest, gpu: plans.GpuIdentity, args) -> dict:
    """Build, choose the precision, install the plan atomically and record the decision."""
    fp32_options = plans.BuildOptions(fp16=False, max_batch=args.max_batch)
    fp32 = plans.build_plan(version_dir, manifest, fp32_options)
    decision, chosen = _choose_precision(version_dir, manifest, fp32, args)
    plans.install_plan(version_dir, gpu, lambda: chosen)
    record = {**decision, "tolerance": args.fp16_tolerance, "measured_on": gpu.plan_name}
    precision_path = version_dir / plans.PLANS_DIR / plans.PRECISION_NAME
    plans.write_atomic(precision_path, (json.dumps(record, indent=2) + "\n").encode())
    return record


def _choose_precision(version_dir: Path, manifest: EngineManifest, fp32: bytes, args) -> tuple[dict, bytes]:
    if args.eval_data is None:
        return {"fp16": False, "reason": "no --eval-data: FP16 not validated, FP32 plan"}, fp32
    if not plans.fp16_flag_available():
        return {"fp16": False, "reason": "strongly typed TensorRT: FP16 needs an FP16 ONNX graph"}, fp32
    fp16 = plans.build_plan(version_dir, manifest, plans.BuildOptions(fp16=True, max_batch=args.max_batch))
    feeds = evaluation_feeds(version_dir, manifest, args.eval_data, args.eval_clips)
    reference = run_plan(version_dir, manifest, fp32, feeds, args.max_batch)
    candidate = run_plan(version_dir, manifest, fp16, feeds, args.max_batch)
    gaps = output_gaps(reference, candidate)
    within = all(gap <= args.fp16_tolerance for gap in gaps.values())
    return {"fp16": within, "gaps": gaps, "reason": "FP16 within tolerance" if within else "FP16 too far"}, (
        fp16 if within else fp32
    )


def output_gaps(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, float]:
    """Per output: max absolute difference (floats) or the share of differing elements (integers)."""
    gaps = {}
    for name, expected in reference.items():
        got = candidate[name]
        if np.issubdtype(expected.dtype, np.floating):
            gaps[name] = float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64))))
        else:
            gaps[name] = float(np.mean(expected != got))
    return gaps


def run_plan(version_dir: Path, manifest: EngineManifest, plan: bytes, feeds: dict, max_batch: int) -> dict:
    """Outputs of ``plan`` over ``feeds``, in batches the profile accepts."""
    from stream_tagger.engines.runtime.tensorrt import TensorRTRuntime

    runtime = TensorRTRuntime(version_dir, manifest, plan=plan)
    try:
        return batched(runtime.infer, EngineInputs.load(version_dir, manifest), feeds, max_batch)
    finally:
        runtime.close()


def batched(infer, inputs: EngineInputs, feeds: dict[str, np.ndarray], max_batch: int) -> dict[str, np.ndarray]:
    """Run ``infer`` on ``feeds`` in chunks of ``max_batch`` clips (constant inputs go whole)."""
    per_clip = set(inputs.per_clip)
    total = len(feeds[next(iter(per_clip))])
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, total, max_batch):
        chunk = {k: v[start : start + max_batch] if k in per_clip else v for k, v in feeds.items()}
        parts.append(infer(chunk))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def evaluation_feeds(version_dir: Path, manifest: EngineManifest, data_dir: Path, clips: int) -> dict:
    """Every input of the engine, built the way the worker builds it, from the first ``clips`` clips."""
    from trainer.datasets.format import Dataset
    from trainer.datasets.views import FramesView, cached_view

    dataset = Dataset.load(data_dir)
    rows = list(range(min(clips, len(dataset))))
    frames = {policy: cached_view(dataset, FramesView(policy)).read_many(rows) for policy in manifest.sampling_policies}
    return EngineInputs.load(version_dir, manifest).feeds(frames, [dataset.rows[i].title or "" for i in rows])
