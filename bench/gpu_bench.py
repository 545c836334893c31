"""GPU benchmark: NVDEC early-frame decode, TensorRT throughput by batch, decode+infer per video.

Every GPU figure sits beside the CPU path measured on the same machine in the same run
(PyAV decode, ONNX Runtime inference). Runs only where TensorRT, pycuda and a CUDA device are
usable; elsewhere it says so and exits 2. Results: ``bench/results/gpu-<device>.json``.

    python3 -m bench.gpu_bench [--quick] [--batches 1,8,32] [--iterations 50]

The Kafka worker end to end (broker in the loop) is the worker benchmark run with
``backend=tensorrt``; docs/gpu.md gives the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import machine
from bench.engines import BENCH_TITLE, Engine, decode_policies, newest_engines
from bench.stats import percentiles, summarise
from bench.videos import video_set
from stream_tagger.decode import make_decoder
from stream_tagger.engines.runtime import make_runtime, plans, tensorrt_available

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PATHS = {"gpu": ("nvdec", "tensorrt"), "cpu": ("pyav", "onnxruntime")}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not tensorrt_available():
        print("gpu_bench needs an NVIDIA GPU with TensorRT and pycuda; none is usable here (docs/gpu.md)")
        return 2
    gpu = plans.current_gpu()
    videos = video_set(quick=args.quick)
    engines = newest_engines()
    policies = decode_policies(engines)
    report = {
        "machine": machine.describe() | {"gpu": gpu.name, "plan_key": gpu.plan_name},
        "videos": [video.as_dict() for video in videos],
        "decode": {
            name: decode_rate(name, [str(v.path) for v in videos], policies, args.passes)
            for name in ("pyav", "nvdec")
        },
        "inference": {e.name: inference_by_batch(e, args.batches, args.iterations) for e in engines},
        "pipeline": {
            path: pipeline(path, [str(v.path) for v in videos], engines, args.passes) for path in PATHS
        },
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"gpu-{plans.sanitise(gpu.name)}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def decode_rate(backend: str, paths: list[str], policies, passes: int) -> dict:
    """Early-frame decode throughput (videos/s), and which backend really decoded each video."""
    decoder = make_decoder(backend)
    used = {path: decoder.decode(path, policies).backend for path in paths}  # warm-up + backend check
    rates = []
    for _ in range(passes):
        started = time.perf_counter()
        for path in paths:
            decoder.decode(path, policies)
        rates.append(len(paths) / (time.perf_counter() - started))
    return {"videos_per_s": summarise(rates), "backend_used": used}


def inference_by_batch(engine: Engine, batches: list[int], iterations: int) -> dict:
    """Clips/s of each runtime at each batch size (host arrays in and out, as the worker does)."""
    out = {}
    for backend in ("tensorrt", "onnxruntime"):
        runtime = make_runtime(backend, engine.version_dir, engine.manifest)
        try:
            out[backend] = {str(batch): _clips_per_s(runtime, engine, batch, iterations) for batch in batches}
        finally:
            runtime.close()
    return out


def _clips_per_s(runtime, engine: Engine, batch: int, iterations: int) -> float:
    feeds = engine.random_feeds(batch, seed=batch)
    for _ in range(3):
        runtime.infer(feeds)
    started = time.perf_counter()
    for _ in range(iterations):
        runtime.infer(feeds)
    return round(batch * iterations / (time.perf_counter() - started), 1)


def pipeline(path_name: str, paths: list[str], engines: list[Engine], passes: int) -> dict:
    """Per video: decode every engine's frames, run every engine at batch 1; videos/s and latency."""
    decoder_name, backend = PATHS[path_name]
    decoder = make_decoder(decoder_name)
    runtimes = [(e, make_runtime(backend, e.version_dir, e.manifest)) for e in engines]
    policies = decode_policies(engines)
    latencies, started = [], time.perf_counter()
    try:
        for _ in range(passes):
            for path in paths:
                latencies.append(_one_video(decoder, runtimes, path, policies))
    finally:
        for _, runtime in runtimes:
            runtime.close()
    elapsed = time.perf_counter() - started
    return {
        "decoder": decoder_name,
        "backend": backend,
        "videos_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": percentiles(latencies),
        "videos": len(latencies),
    }


def _one_video(decoder, runtimes, path: str, policies) -> float:
    started = time.perf_counter()
    clip = decoder.decode(path, policies)
    for engine, runtime in runtimes:
        frames = {p: clip.frames[p][None] for p in engine.manifest.sampling_policies}
        runtime.infer(engine.inputs.feeds(frames, [BENCH_TITLE]))
    return (time.perf_counter() - started) * 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m bench.gpu_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one video per source and size")
    parser.add_argument("--passes", type=int, default=3, help="passes over the video set")
    parser.add_argument("--iterations", type=int, default=50, help="timed inference calls per batch size")
    parser.add_argument(
        "--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32]
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
