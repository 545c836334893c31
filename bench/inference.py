"""Inference alone: each engine at batch 1, 4, 16, 32 on the runtime the worker would pick here."""

from __future__ import annotations

import time

from bench.engines import Engine
from bench.stats import summarise
from stream_tagger.engines.runtime import make_runtime

BATCH_SIZES = (1, 4, 16, 32)


def measure(
    engines: list[Engine],
    repetitions: int,
    batch_sizes=BATCH_SIZES,
    backend: str = "auto",
    min_seconds: float = 0.3,
) -> dict:
    """Per engine and batch size: milliseconds per batch and videos/s (medians over repetitions)."""
    results = {}
    for engine in engines:
        runtime = make_runtime(backend, engine.version_dir, engine.manifest)
        try:
            results[engine.name] = {
                "backend": runtime.backend,
                "batches": {
                    str(b): _one_size(runtime, engine, b, repetitions, min_seconds) for b in batch_sizes
                },
            }
        finally:
            runtime.close()
    return results


def _one_size(runtime, engine: Engine, batch: int, repetitions: int, min_seconds: float) -> dict:
    feeds = engine.random_feeds(batch)
    runtime.infer(feeds)  # first call allocates; not part of the figure
    per_batch = []
    for _ in range(repetitions):
        calls, started = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - started < min_seconds:
            runtime.infer(feeds)
            calls += 1
        per_batch.append((time.perf_counter() - started) / calls)
    ms = summarise([s * 1000 for s in per_batch], 3)
    return {"ms_per_batch": ms, "videos_per_s": round(batch / (ms["median"] / 1000), 1)}
