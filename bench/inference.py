"""Inference alone: each engine at batch 1, 4, 16, 32 on the runtime the worker would pick here."""

from __future__ import annotations

import time

import numpy as np

from bench.engines import Engine
from bench.stats import summarise
from stream_tagger.engine_manifest import MEMORY_NAME, TensorSpec
from stream_tagger.runtime import make_runtime

BATCH_SIZES = (1, 4, 16, 32)
_DTYPES = {
    "uint8": np.uint8,
    "int32": np.int32,
    "int64": np.int64,
    "float16": np.float16,
    "float32": np.float32,
}


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
    feeds = feeds_for(engine, batch)
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


def feeds_for(engine: Engine, batch: int) -> dict[str, np.ndarray]:
    """Random inputs shaped by the manifest; the early-action memory bank from memory.npz if present."""
    rng = np.random.default_rng(0)
    memory = _memory(engine)
    feeds = {}
    for spec in engine.manifest.inputs:
        if spec.name in memory:
            feeds[spec.name] = memory[spec.name]
        elif spec.name == "title_ids":
            feeds[spec.name] = _titles(engine, batch)
        else:
            feeds[spec.name] = _random(spec, batch, rng)
    return feeds


def _random(spec: TensorSpec, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = [batch if d == "batch" else (d if isinstance(d, int) else 24) for d in spec.shape]
    dtype = _DTYPES[spec.dtype]
    if np.issubdtype(dtype, np.integer):
        high = 6 if spec.name == "memory_labels" else (256 if dtype == np.uint8 else 1 << 15)
        return rng.integers(0, high, size=shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _titles(engine: Engine, batch: int) -> np.ndarray:
    """Token ids from the engine's own tokenizer: random ids would not be valid embedding rows."""
    from stream_tagger.text import HashedTokenizer

    tokenizer = HashedTokenizer.from_config(engine.manifest.serving.get("tokenizer", {}))
    titles = [f"Breaking: benchmark clip {i} live now" for i in range(batch)]
    return np.stack([tokenizer.encode(title) for title in titles])


def _memory(engine: Engine) -> dict[str, np.ndarray]:
    path = engine.version_dir / MEMORY_NAME
    if not path.exists():
        return {}
    with np.load(path) as bank:
        return {name: bank[name] for name in bank.files if name in {"memory_refs", "memory_labels"}}
