"""TensorRT plans: cache key per GPU, build from model.onnx, build-once under a file lock (DESIGN.md §3).

A plan is only valid for one GPU architecture and one TensorRT version, so it lives at
``engines/<engine>/<version>/plans/<gpu>-sm<cc>-trt<ver>.plan``. A missing plan is built on first use;
concurrent workers wait on a lock file and the plan appears by atomic rename, never half-written.
TensorRT is imported inside the functions that need it, so this module imports on CPU-only machines.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream_tagger.engines.manifest import MEMORY_NAME, MODEL_NAME, EngineManifest

log = logging.getLogger(__name__)

PLANS_DIR = "plans"
#: Written by ``build-engines``: whether FP16 kept outputs within tolerance for this engine version.
PRECISION_NAME = "precision.json"
DEFAULT_MAX_BATCH = 32
#: Range of a dynamic axis other than the batch (e.g. the memory bank's ``refs``), which may grow.
DEFAULT_MAX_OTHER = 4096


@dataclass(frozen=True)
class GpuIdentity:
    name: str
    compute_capability: tuple[int, int]
    tensorrt_version: str

    @property
    def plan_name(self) -> str:
        return plan_name(self.name, self.compute_capability, self.tensorrt_version)


@dataclass(frozen=True)
class BuildOptions:
    fp16: bool = False
    max_batch: int = DEFAULT_MAX_BATCH
    opt_batch: int | None = None
    max_other: int = DEFAULT_MAX_OTHER


def sanitise(text: str) -> str:
    """Lowercase, runs of anything but letters, digits and dots become one dash."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"


def plan_name(gpu_name: str, compute_capability: tuple[int, int], tensorrt_version: str) -> str:
    """``nvidia-h100-80gb-hbm3-sm90-trt10.13.3.plan`` for an H100 and TensorRT 10.13.3."""
    major, minor = compute_capability
    return f"{sanitise(gpu_name)}-sm{major}{minor}-trt{sanitise(tensorrt_version)}.plan"


def plan_path(version_dir: Path, gpu: GpuIdentity) -> Path:
    return version_dir / PLANS_DIR / gpu.plan_name


def current_gpu() -> GpuIdentity:
    """Identity of CUDA device 0 and the installed TensorRT (needs both)."""
    import pycuda.driver as cuda
    import tensorrt as trt

    cuda.init()
    device = cuda.Device(0)
    return GpuIdentity(device.name(), tuple(device.compute_capability()), trt.__version__)


def ensure_plan(version_dir: Path, gpu: GpuIdentity, build: Callable[[], bytes]) -> Path:
    """Return the plan for ``gpu``, calling ``build`` once (across processes) when it is missing."""
    path = plan_path(version_dir, gpu)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        if not path.exists():  # another process may have built it while we waited
            log.info("building TensorRT plan %s (first use on this GPU)", path)
            write_atomic(path, build())
    return path


def install_plan(version_dir: Path, gpu: GpuIdentity, build: Callable[[], bytes]) -> Path:
    """Build and (re)place the plan for ``gpu`` under the lock: stale or corrupt plans, build-engines."""
    path = plan_path(version_dir, gpu)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        write_atomic(path, build())
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside ``path`` then rename, so readers see the old file or the whole new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _locked:
    """An exclusive ``flock`` on ``path`` for the duration of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> None:
        self._handle = open(self._path, "a+b")
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def recorded_precision(version_dir: Path) -> bool:
    """True when ``build-engines`` found FP16 within tolerance for this engine version."""
    path = version_dir / PLANS_DIR / PRECISION_NAME
    if not path.exists():
        return False
    return bool(json.loads(path.read_text()).get("fp16", False))


def default_options(version_dir: Path) -> BuildOptions:
    """What the worker builds on first use: FP16 only where build-engines validated it."""
    return BuildOptions(fp16=recorded_precision(version_dir))


def axis_range(axis: str, options: BuildOptions, observed: int | None = None) -> tuple[int, int, int]:
    """(min, opt, max) of a dynamic axis: the batch axis from the options, others up to ``max_other``."""
    if axis == "batch":
        opt = options.opt_batch or max(1, options.max_batch // 2)
        return (1, min(opt, options.max_batch), options.max_batch)
    upper = max(options.max_other, observed or 1)
    return (1, min(observed or upper, upper), upper)


def observed_sizes(version_dir: Path) -> dict[str, int]:
    """Sizes of non-batch dynamic axes known from files beside the model (the memory bank's refs)."""
    memory = version_dir / MEMORY_NAME
    if not memory.exists():
        return {}
    import numpy as np

    with np.load(memory) as bank:
        labels = [bank[key] for key in bank.files if bank[key].ndim == 1]
    return {"refs": int(labels[0].shape[0])} if labels else {}


def build_plan(version_dir: Path, manifest: EngineManifest, options: BuildOptions) -> bytes:
    """Parse model.onnx and build a serialised plan with one optimisation profile (TensorRT 10 or 11)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10+
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(version_dir / MODEL_NAME)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {version_dir / MODEL_NAME}: {errors}")
    config = builder.create_builder_config()
    config.add_optimization_profile(
        _profile(builder, network, manifest, options, observed_sizes(version_dir))
    )
    if options.fp16:
        _enable_fp16(trt, config)
    return _build_with_timing_cache(builder, network, config, version_dir)


def fp16_flag_available() -> bool:
    """TensorRT 10 has a builder FP16 flag; 11.x is strongly typed and takes precision from the graph."""
    import tensorrt as trt

    return hasattr(trt.BuilderFlag, "FP16")


def _enable_fp16(trt, config) -> None:
    if not hasattr(trt.BuilderFlag, "FP16"):
        raise RuntimeError(
            f"TensorRT {trt.__version__} builds strongly typed networks only: FP16 must come from an "
            "FP16 ONNX graph (e.g. ModelOpt AutoCast), not from a builder flag"
        )
    config.set_flag(trt.BuilderFlag.FP16)


def _profile(builder, network, manifest: EngineManifest, options: BuildOptions, observed: dict[str, int]):
    profile = builder.create_optimization_profile()
    specs = {spec.name: spec for spec in manifest.inputs}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        names = specs[tensor.name].shape if tensor.name in specs else []
        low, opt, high = list(shape), list(shape), list(shape)
        for axis, size in enumerate(shape):
            if size == -1:
                axis_name = names[axis] if axis < len(names) and isinstance(names[axis], str) else "dynamic"
                low[axis], opt[axis], high[axis] = axis_range(axis_name, options, observed.get(axis_name))
        profile.set_shape(tensor.name, low, opt, high)
    return profile


def _build_with_timing_cache(builder, network, config, version_dir: Path) -> bytes:
    """Reuse and update the timing cache beside the plans: rebuilds skip tactic timing already done."""
    cache_path = version_dir / PLANS_DIR / (current_gpu().plan_name.removesuffix(".plan") + ".timing")
    previous = cache_path.read_bytes() if cache_path.exists() else b""
    cache = config.create_timing_cache(previous)
    config.set_timing_cache(cache, False)
    serialised = builder.build_serialized_network(network, config)
    if serialised is None:
        raise RuntimeError(f"TensorRT failed to build a plan for {version_dir}")
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cache_path, bytes(cache.serialize()))
    return bytes(serialised)
