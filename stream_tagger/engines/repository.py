"""The engine repository (DESIGN §3): the one place that lists, publishes, loads and watches versions.

Layout: ``<root>/<engine>/<N>/`` holds ``model.onnx``, ``manifest.json`` and any constant files
(``memory.npz``). A version is complete when its manifest and model are present; it is immutable once
published. Publishing assembles a hidden staging folder and renames it into place under a per-engine
lock, so readers see a whole version or none, and a number is never reused. Retiring a version
(rollback) renames it to ``.retired-N-<time>``: the next-highest version is served again, and the
files stay for the post-mortem.

The watcher makes the served set follow the repository: the highest complete version of each engine
that loads and passes a probe inference is served, whether it is newer than the served one (a
publish) or older (a retire, a deleted folder). A version that fails is remembered by its files'
fingerprint and retried only once they change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stream_tagger.engines.manifest import (
    ENGINE_NAMES,
    MANIFEST_NAME,
    MODEL_NAME,
    ConstantFeed,
    EngineManifest,
    Feed,
    InputSpec,
    Preprocessing,
    TensorSpec,
    TitleFeed,
    TrainingRecord,
    feed_policy,
    file_sha256,
)
from stream_tagger.engines.runtime import Runtime, make_runtime
from stream_tagger.errors import ConfigError, EngineFailed
from stream_tagger.sampling import FramePolicy
from stream_tagger.text import HashedTokenizer

log = logging.getLogger(__name__)

RETIRED_PREFIX = ".retired-"
STAGING_PREFIX = ".staging-"
LOCK_NAME = ".publish.lock"
PROBE_BATCH = 2


class VersionExists(ConfigError):
    """Raised when a publish names a version number that is already taken."""


class NotLatest(ConfigError):
    """Raised when a publish that must follow a given version finds a newer (or older) one newest."""


# ---- discovery ----------------------------------------------------------------------------------
def list_versions(engine_dir: Path) -> list[tuple[int, Path]]:
    """Complete version folders (manifest.json and model.onnx present) of one engine, lowest first."""
    engine_dir = Path(engine_dir)
    if not engine_dir.is_dir():
        return []
    found = []
    for path in engine_dir.iterdir():
        if path.name.isdigit() and (path / MANIFEST_NAME).is_file() and (path / MODEL_NAME).is_file():
            found.append((int(path.name), path))
    return sorted(found)


def latest_version(engine_dir: Path) -> Path | None:
    versions = list_versions(engine_dir)
    return versions[-1][1] if versions else None


def _taken_numbers(engine_dir: Path) -> set[int]:
    """Numbers in use, retired ones included: a retired number is never published again."""
    taken = set()
    for path in engine_dir.iterdir() if engine_dir.is_dir() else ():
        name = path.name.removeprefix(RETIRED_PREFIX)
        number = name.split("-", 1)[0]
        if number.isdigit():
            taken.add(int(number))
    return taken


# ---- publishing ---------------------------------------------------------------------------------
def describe_graph(model_path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs of an ONNX graph as manifest tensor specs (read by ONNX Runtime)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    kinds = {"tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64",
             "tensor(float16)": "float16", "tensor(float)": "float32"}

    def spec(arg: Any) -> TensorSpec:
        shape = [dim if isinstance(dim, int) else (dim or "batch") for dim in arg.shape]
        return TensorSpec(name=arg.name, dtype=kinds[arg.type], shape=shape)

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def publish_version(
    engines_root: Path,
    engine: str,
    files: Mapping[str, Path | bytes],
    *,
    feeds: Mapping[str, Feed],
    labels: Mapping[str, Sequence[str]],
    training: TrainingRecord | Mapping[str, Any],
    preprocessing: Preprocessing | None = None,
    serving: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    version: int | None = None,
    if_latest: int | None = None,
) -> Path:
    """Publish ``files`` ({name in the version folder: source path or bytes}) as a new version.

    The manifest's inputs and outputs are read from the graph itself; ``feeds`` says where each input
    comes from. ``version=None`` takes the next free number; a taken number raises VersionExists.
    ``if_latest=N`` publishes only while N is still the newest complete version (checked under the
    lock, so two writers that read the same version cannot both build on it); else NotLatest.
    Returns the published folder. Nothing is visible to readers until the final rename.
    """
    engine_dir = Path(engines_root) / engine
    engine_dir.mkdir(parents=True, exist_ok=True)
    staging = engine_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name, source in files.items():
            target = staging / name
            if isinstance(source, bytes):
                target.write_bytes(source)
            else:
                shutil.copyfile(source, target)
        inputs, outputs = describe_graph(staging / MODEL_NAME)
        missing = [spec.name for spec in inputs if spec.name not in feeds]
        if missing:
            raise ConfigError(f"no feed given for graph inputs {missing}")
        with _publish_lock(engine_dir):
            newest = max((number for number, _ in list_versions(engine_dir)), default=None)
            if if_latest is not None and newest != if_latest:
                raise NotLatest(f"{engine}/{if_latest} is no longer the newest version (newest: {newest})")
            number = version if version is not None else max(_taken_numbers(engine_dir), default=0) + 1
            if number in _taken_numbers(engine_dir):
                raise VersionExists(f"{engine}/{number} exists; versions are immutable")
            manifest = EngineManifest(
                engine=engine,
                version=number,
                inputs=[InputSpec(**spec.model_dump(), feed=feeds[spec.name]) for spec in inputs],
                outputs=outputs,
                labels={key: list(values) for key, values in labels.items()},
                preprocessing=preprocessing or Preprocessing(),
                serving=dict(serving or {}),
                training=training,
                metrics=dict(metrics or {}),
                sha256={name: file_sha256(staging / name) for name in files},
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            (staging / MANIFEST_NAME).write_text(manifest.to_json())
            _fsync_tree(staging)
            final = engine_dir / str(number)
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("engine published", extra={"engine": engine, "ref": manifest.ref})
    return final


def retire_version(engines_root: Path, engine: str) -> tuple[Path, Path | None]:
    """Retire the newest version (rollback): returns (retired folder, version now newest).

    Refuses to retire the last version, so an engine never disappears from under running workers.
    """
    engine_dir = Path(engines_root) / engine
    with _publish_lock(engine_dir):
        versions = list_versions(engine_dir)
        if len(versions) < 2:
            raise ConfigError(f"{engine} has {len(versions)} version(s); rollback needs an older one")
        number, newest = versions[-1]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        retired = engine_dir / f"{RETIRED_PREFIX}{number}-{stamp}"
        os.rename(newest, retired)
    return retired, versions[-2][1]


@contextlib.contextmanager
def _publish_lock(engine_dir: Path) -> Iterator[None]:
    with open(engine_dir / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


# ---- loading ------------------------------------------------------------------------------------
@dataclass
class EngineInputs:
    """Builds every input of an engine's graph from what the worker has: frames by policy and titles."""

    manifest: EngineManifest
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    tokenizers: dict[str, HashedTokenizer] = field(default_factory=dict)

    @classmethod
    def load(cls, version_dir: Path, manifest: EngineManifest) -> EngineInputs:
        constants: dict[str, np.ndarray] = {}
        tokenizers: dict[str, HashedTokenizer] = {}
        for spec in manifest.inputs:
            if isinstance(spec.feed, ConstantFeed):
                with np.load(Path(version_dir) / spec.feed.file) as arrays:
                    constants[spec.name] = np.ascontiguousarray(arrays[spec.feed.key]).astype(spec.dtype)
            elif isinstance(spec.feed, TitleFeed):
                tokenizers[spec.name] = HashedTokenizer.from_config(spec.feed.tokenizer)
        return cls(manifest, constants, tokenizers)

    @property
    def per_clip(self) -> list[str]:
        """Inputs with one row per clip (the rest, constants, are shared by the whole batch)."""
        return [spec.name for spec in self.manifest.inputs if spec.name not in self.constants]

    def feeds(self, frames: Mapping[FramePolicy, np.ndarray], titles: Sequence[str]) -> dict[str, np.ndarray]:
        """Every input of the graph for one batch: frames and fragments by policy, titles tokenised,
        constants."""
        built: dict[str, np.ndarray] = {}
        for spec in self.manifest.inputs:
            policy = feed_policy(spec.feed)
            if policy is not None:
                built[spec.name] = frames[policy]
            elif isinstance(spec.feed, TitleFeed):
                built[spec.name] = self.tokenizers[spec.name].encode_batch(list(titles))
            else:
                built[spec.name] = self.constants[spec.name]
        return built

    def probe_feeds(self, batch: int = PROBE_BATCH) -> dict[str, np.ndarray]:
        """Feeds built from the manifest alone: black frames and short titles."""
        frames = {
            policy: np.zeros((batch, policy.frames, policy.height, policy.width, 3), np.uint8)
            for policy in self.manifest.sampling_policies
        }
        return self.feeds(frames, ["probe title"] * batch)


@dataclass
class LoadedEngine:
    """One engine version ready to run: its manifest, its inputs and its runtime."""

    manifest: EngineManifest
    version_dir: Path
    runtime: Runtime
    inputs: EngineInputs

    @property
    def name(self) -> str:
        return self.manifest.engine

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @property
    def sampling_policies(self) -> list[FramePolicy]:
        return self.manifest.sampling_policies

    def infer(self, frames: Mapping[FramePolicy, np.ndarray], titles: Sequence[str]) -> dict[str, np.ndarray]:
        return self.runtime.infer(self.inputs.feeds(frames, titles))

    def probe(self) -> dict[str, np.ndarray]:
        """Run a batch built from the manifest alone and check every output against its spec.

        Raises EngineFailed when the graph and its manifest disagree (names, dtypes, shapes).
        """
        outputs = self.runtime.infer(self.inputs.probe_feeds())
        for spec in self.manifest.outputs:
            value = outputs.get(spec.name)
            if value is None:
                raise EngineFailed(f"{self.ref}: output {spec.name!r} missing from the graph's results")
            declared = [None if isinstance(dim, str) else dim for dim in spec.shape]
            declared[0] = PROBE_BATCH
            if len(value.shape) != len(declared) or any(d is not None and d != g for d, g in zip(declared, value.shape)):
                raise EngineFailed(f"{self.ref}: output {spec.name} has shape {value.shape}, manifest {spec.shape}")
            if str(value.dtype) != spec.dtype:
                raise EngineFailed(f"{self.ref}: output {spec.name} is {value.dtype}, manifest {spec.dtype}")
        return outputs

    def close(self) -> None:
        self.runtime.close()


def verify_files(version_dir: Path, manifest: EngineManifest) -> None:
    """ConfigError unless every file the manifest lists has the sha256 it records."""
    for name, expected in manifest.sha256.items():
        if file_sha256(Path(version_dir) / name) != expected:
            raise ConfigError(f"{Path(version_dir) / name}: sha256 does not match its manifest")


def load_engine(version_dir: Path, backend: str, threads: int = 0) -> LoadedEngine:
    """Load and verify one version folder: every file's sha256, its inputs, a runtime."""
    version_dir = Path(version_dir)
    manifest = EngineManifest.load(version_dir)
    verify_files(version_dir, manifest)
    inputs = EngineInputs.load(version_dir, manifest)
    return LoadedEngine(manifest, version_dir, make_runtime(backend, version_dir, manifest, threads=threads), inputs)


# ---- serving ------------------------------------------------------------------------------------
OnChange = Callable[[LoadedEngine, "LoadedEngine | None"], None]
OnFailure = Callable[[str, Path, Exception], None]
Check = Callable[[LoadedEngine], None]


class EngineRepository:
    """The served version of each engine, and the watcher that follows the repository.

    ``check`` runs on every candidate after its probe (the worker builds its record fields there),
    so a version that the rest of the worker cannot use is refused before it is served.
    """

    def __init__(
        self,
        root: Path,
        backend: str,
        threads: int = 0,
        *,
        on_change: OnChange | None = None,
        on_failure: OnFailure | None = None,
        check: Check | None = None,
        engines: Sequence[str] = ENGINE_NAMES,
    ) -> None:
        self.root = Path(root)
        self.engines = tuple(engines)  # the memory writer serves early_action alone
        self.backend = backend
        self.threads = threads
        self._on_change = on_change or (lambda new, old: None)
        self._on_failure = on_failure or (lambda engine, path, exc: None)
        self._check = check or (lambda engine: None)
        self._served: dict[str, LoadedEngine] = {}
        self._parked: dict[str, LoadedEngine] = {}
        self._failed: set[tuple] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> dict[str, LoadedEngine]:
        """Serve the best version of every engine present (an engine with no version is not served).

        ConfigError when an engine has versions but none of them can be served, or nothing is served.
        """
        for name in self.engines:
            refused: list[str] = []
            engine = self._best_candidate(name, served_version=None, refused=refused)
            if engine is not None:
                self._serve(engine)
            elif refused:
                raise ConfigError(f"no version of engine {name!r} can be served: {'; '.join(refused)}")
        if not self._served:
            raise ConfigError(
                f"no engine version under {self.root} (expected {self.root}/<engine>/<N>/ for {', '.join(self.engines)})"
            )
        return dict(self._served)

    @property
    def served(self) -> dict[str, LoadedEngine]:
        return dict(self._served)

    def swap_parked(self) -> list[str]:
        """Serve the versions the watcher prepared; call between batches. Returns swapped names."""
        with self._lock:
            parked, self._parked = self._parked, {}
        for engine in parked.values():
            self._serve(engine)
        return list(parked)

    def scan_once(self) -> None:
        """Prepare (park) the version each engine should serve, when it differs from the served one."""
        for name in self.engines:
            with self._lock:
                current = self._parked.get(name) or self._served.get(name)
            engine = self._best_candidate(name, current.manifest.version if current else None)
            if engine is None:
                continue
            with self._lock:
                stale = self._parked.get(name)
                self._parked[name] = engine
            if stale is not None:
                stale.close()

    def start_watching(self, interval_s: float, on_scan_error: Callable[[Exception], None] | None = None) -> None:
        if interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._watch, args=(interval_s, on_scan_error), name="engine-watcher", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for engine in [*self._served.values(), *self._parked.values()]:
            engine.close()

    def _watch(self, interval_s: float, on_scan_error: Callable[[Exception], None] | None) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.scan_once()
            except Exception as exc:  # a broken folder must never end hot reloading for good
                log.exception("engine scan failed")
                if on_scan_error is not None:
                    on_scan_error(exc)

    def _best_candidate(
        self, name: str, served_version: int | None, refused: list[str] | None = None
    ) -> LoadedEngine | None:
        """The highest version that loads and passes its probe, unless that is the served one."""
        for number, path in reversed(list_versions(self.root / name)):
            if number == served_version:
                return None
            fingerprint = _fingerprint(path)
            if fingerprint in self._failed:
                continue
            try:
                engine = load_engine(path, self.backend, self.threads)
            except Exception as exc:
                self._refuse(name, path, fingerprint, exc, refused)
                continue
            try:
                engine.probe()
                self._check(engine)
            except Exception as exc:
                engine.close()
                self._refuse(name, path, fingerprint, exc, refused)
                continue
            return engine
        return None

    def _refuse(self, name: str, path: Path, fingerprint: tuple, exc: Exception, refused: list[str] | None) -> None:
        if refused is not None:
            refused.append(f"{path.name}: {exc}")
        log.error("engine version refused", extra={"engine": name, "path": str(path), "error": str(exc)[:500]})
        self._failed.add(fingerprint)
        self._on_failure(name, path, exc)

    def _serve(self, engine: LoadedEngine) -> None:
        old = self._served.get(engine.name)
        self._served[engine.name] = engine
        log.info("engine served", extra={"engine": engine.name, "ref": engine.ref, "backend": engine.runtime.backend})
        self._on_change(engine, old)
        if old is not None:
            old.close()


def _fingerprint(version_dir: Path) -> tuple:
    """Names, sizes and mtimes of a version folder's files: they change while a copy is in progress."""
    entries = []
    for path in sorted(version_dir.iterdir()):
        try:
            stat = path.stat()
        except OSError:  # a dangling symlink: part of the fingerprint, not a reason to stop scanning
            entries.append((path.name, -1, -1))
            continue
        entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return (version_dir, *entries)
