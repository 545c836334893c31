"""GPU inference with TensorRT's tensor API (set_input_shape, set_tensor_address, execute_async_v3).

Same interface as the ONNX Runtime backend: named numpy arrays in, named numpy arrays out. The plan
for this GPU is built from model.onnx on first use (see ``plans``). CUDA goes through pycuda's
*primary* context (``pycuda.autoprimaryctx``), shared with PyAV's NVDEC and any other CUDA user in
the process; every thread that infers gets its own execution context, stream and buffers.
tensorrt and pycuda are imported lazily, so this module imports on machines without them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.runtime import plans
from stream_tagger.errors import ConfigError, EngineFailed

log = logging.getLogger(__name__)


def gpu_ready() -> bool:
    """True when tensorrt and pycuda import and CUDA sees at least one device; never raises."""
    try:
        import pycuda.driver as cuda
        import tensorrt  # noqa: F401  (only its presence matters here)
    except (ImportError, OSError):  # OSError: libcuda or libnvinfer missing at load time
        return False
    try:
        cuda.init()
        return cuda.Device.count() > 0
    except cuda.Error:
        return False


@contextmanager
def _primary_context() -> Iterator[None]:
    """Make the device's primary context current on this thread for the block (a cheap push/pop)."""
    import pycuda.autoprimaryctx as primary
    import pycuda.driver as cuda

    primary.context.push()
    try:
        yield
    finally:
        cuda.Context.pop()


class TensorRTRuntime:
    backend = "tensorrt"

    def __init__(self, version_dir: Path, manifest: EngineManifest, plan: bytes | None = None) -> None:
        """Serve the cached plan for this GPU, or exactly ``plan`` when given (build-engines)."""
        if not gpu_ready():
            raise ConfigError("backend=tensorrt needs tensorrt, pycuda and a visible CUDA device; none here")
        import tensorrt as trt

        self._trt = trt
        self._output_names = [spec.name for spec in manifest.outputs]
        self._states: list[_ThreadState] = []
        self._states_lock = threading.Lock()
        self._local = threading.local()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))  # must outlive its engine
        with _primary_context():
            self._engine = (
                self._load_engine(version_dir, manifest) if plan is None else self._deserialise(plan)
            )
        if self._engine is None:
            raise ConfigError(f"TensorRT cannot deserialise a plan for {manifest.ref} on this GPU")
        log.info("TensorRT engine %s loaded on %s", manifest.ref, plans.current_gpu().plan_name)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with _primary_context():
            state = self._thread_state()
            try:
                return state.run(feeds, self._output_names)
            except Exception as exc:  # pycuda/TensorRT raise their own untyped errors; wrap at the boundary
                raise EngineFailed(f"tensorrt inference failed: {exc}") from exc

    def close(self) -> None:
        with _primary_context():
            with self._states_lock:
                for state in self._states:
                    state.free()
                self._states.clear()
            self._engine = None

    def _load_engine(self, version_dir: Path, manifest: EngineManifest):
        gpu = plans.current_gpu()
        options = plans.default_options(version_dir)
        build = lambda: plans.build_plan(version_dir, manifest, options)
        engine = self._deserialise(plans.ensure_plan(version_dir, gpu, build).read_bytes())
        if engine is None:  # built by another TensorRT build or for another device: rebuild once
            log.warning(
                "plan for %s on %s cannot be deserialised: rebuilding it", manifest.ref, gpu.plan_name
            )
            engine = self._deserialise(plans.install_plan(version_dir, gpu, build).read_bytes())
        return engine

    def _deserialise(self, plan: bytes):
        """The engine, or None when this TensorRT/GPU cannot use the plan (TensorRT returns None)."""
        return self._runtime.deserialize_cuda_engine(plan)

    def _thread_state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = _ThreadState(self._trt, self._engine)
            self._local.state = state
            with self._states_lock:
                self._states.append(state)
        return state


class _ThreadState:
    """One thread's execution context, CUDA stream and grow-only device/page-locked buffers."""

    def __init__(self, trt, engine) -> None:
        import pycuda.driver as cuda

        self._cuda = cuda
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()  # non-default: never serialises with other CUDA users
        self._dtypes = {}
        self._inputs = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            self._dtypes[name] = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append(name)
        self._device: dict[str, tuple[object, int]] = {}
        self._host: dict[str, np.ndarray] = {}

    def run(self, feeds: Mapping[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        for name in self._inputs:
            self._stage_input(name, np.ascontiguousarray(feeds[name], dtype=self._dtypes[name]))
        outputs = {name: self._bind_output(name) for name in output_names}
        if not self._context.execute_async_v3(self._stream.handle):
            raise RuntimeError("execute_async_v3 returned False")
        for name, host in outputs.items():
            self._cuda.memcpy_dtoh_async(host, self._device[name][0], self._stream)
        self._stream.synchronize()
        return {name: host.copy() for name, host in outputs.items()}

    def free(self) -> None:
        for allocation, _ in self._device.values():
            allocation.free()
        self._device.clear()
        self._host.clear()
        self._context = None

    def _stage_input(self, name: str, array: np.ndarray) -> None:
        if not self._context.set_input_shape(name, array.shape):
            raise ValueError(f"input {name!r} shape {array.shape} is outside the plan's optimisation profile")
        staging = self._host_view(name, array.shape, array.dtype)
        np.copyto(staging, array)
        device = self._device_buffer(name, array.nbytes)
        self._cuda.memcpy_htod_async(device, staging, self._stream)
        self._context.set_tensor_address(name, int(device))

    def _bind_output(self, name: str) -> np.ndarray:
        shape = tuple(self._context.get_tensor_shape(name))
        host = self._host_view(name, shape, self._dtypes[name])
        self._context.set_tensor_address(name, int(self._device_buffer(name, host.nbytes)))
        return host

    def _device_buffer(self, name: str, nbytes: int):
        allocation, capacity = self._device.get(name, (None, 0))
        if capacity < nbytes:
            if allocation is not None:
                self._stream.synchronize()  # the old buffer may still be read by queued work
                allocation.free()
            allocation, capacity = self._cuda.mem_alloc(max(nbytes, 1)), max(nbytes, 1)
            self._device[name] = (allocation, capacity)
        return allocation

    def _host_view(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Page-locked memory (async copies need it), viewed with this call's shape and dtype."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        buffer = self._host.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            buffer = self._cuda.pagelocked_empty(max(nbytes, 1), np.uint8)
            self._host[name] = buffer
        return buffer[:nbytes].view(dtype).reshape(shape)
