"""The engine repository (DESIGN §3): serve the highest version of each engine, hot-reload new ones.

A background thread scans ``engines/<engine>/`` for a version directory higher than the one served,
loads it off the hot path and parks it; the tagger swaps parked versions in between batches.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stream_tagger.engine_manifest import MANIFEST_NAME, MEMORY_NAME, MODEL_NAME, EngineManifest, file_sha256
from stream_tagger.errors import ConfigError
from stream_tagger.runtime import Runtime, make_runtime

log = logging.getLogger(__name__)

ENGINE_NAMES: tuple[str, ...] = ("classifier", "timeliness", "early_action")


@dataclass
class LoadedEngine:
    """One engine version ready to run: its manifest, runtime and the constant feeds it needs."""

    manifest: EngineManifest
    version_dir: Path
    runtime: Runtime
    extra_feeds: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.engine

    @property
    def ref(self) -> str:
        return self.manifest.ref

    def close(self) -> None:
        self.runtime.close()


def version_dirs(engine_root: Path) -> list[tuple[int, Path]]:
    """Complete version directories (manifest.json and model.onnx present), lowest first."""
    if not engine_root.is_dir():
        return []
    found = [
        (int(p.name), p)
        for p in engine_root.iterdir()
        if p.is_dir() and p.name.isdigit() and (p / MANIFEST_NAME).is_file() and (p / MODEL_NAME).is_file()
    ]
    return sorted(found)


def load_engine(version_dir: Path, backend: str, threads: int = 0) -> LoadedEngine:
    """Load and verify one version directory (sha256 of the model must match the manifest)."""
    manifest = EngineManifest.load(version_dir)
    expected = manifest.sha256.get(MODEL_NAME)
    if expected and file_sha256(version_dir / MODEL_NAME) != expected:
        raise ConfigError(f"{version_dir / MODEL_NAME}: sha256 does not match its manifest")
    runtime = make_runtime(backend, version_dir, manifest, threads=threads)
    extra: dict[str, Any] = {}
    if (version_dir / MEMORY_NAME).is_file():
        from stream_tagger.memory_bank import MemoryBank

        extra = dict(MemoryBank.load(version_dir / MEMORY_NAME).feeds())
    return LoadedEngine(manifest, version_dir, runtime, extra)


class EngineRepository:
    """The served versions of the three engines, plus the background loader of new versions."""

    def __init__(
        self,
        root: Path,
        backend: str,
        threads: int = 0,
        on_change: Callable[[LoadedEngine, LoadedEngine | None], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.backend = backend
        self.threads = threads
        self._on_change = on_change or (lambda new, old: None)
        self._served: dict[str, LoadedEngine] = {}
        self._parked: dict[str, LoadedEngine] = {}
        self._failed: set[tuple] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> dict[str, LoadedEngine]:
        """Load the highest version of every engine; ConfigError if one is missing."""
        for name in ENGINE_NAMES:
            versions = version_dirs(self.root / name)
            if not versions:
                raise ConfigError(f"no version of engine {name!r} under {self.root / name}")
            self._serve(load_engine(versions[-1][1], self.backend, self.threads))
        return dict(self._served)

    @property
    def served(self) -> dict[str, LoadedEngine]:
        return dict(self._served)

    def swap_parked(self) -> list[str]:
        """Serve the versions loaded in the background; call between batches. Returns swapped names."""
        with self._lock:
            parked, self._parked = self._parked, {}
        for engine in parked.values():
            self._serve(engine)
        return list(parked)

    def scan_once(self) -> None:
        """Load (and park) any version higher than the served or parked one."""
        for name in ENGINE_NAMES:
            versions = version_dirs(self.root / name)
            if not versions:
                continue
            number, path = versions[-1]
            if number <= self._known_version(name) or _fingerprint(path) in self._failed:
                continue
            try:
                engine = load_engine(path, self.backend, self.threads)
            except Exception as exc:  # a half-written or broken version must not stop the worker
                log.error("engine load failed", extra={"engine": name, "path": str(path), "error": str(exc)})
                self._failed.add(_fingerprint(path))  # retried once its files change (a copy still running)
                continue
            with self._lock:
                stale = self._parked.get(name)
                self._parked[name] = engine
            if stale is not None:
                stale.close()

    def start_watching(self, interval_s: float) -> None:
        if interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._watch, args=(interval_s,), name="engine-reload", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for engine in [*self._served.values(), *self._parked.values()]:
            engine.close()

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.scan_once()

    def _known_version(self, name: str) -> int:
        with self._lock:
            candidates = [e.manifest.version for e in (self._served.get(name), self._parked.get(name)) if e]
        return max(candidates, default=0)

    def _serve(self, engine: LoadedEngine) -> None:
        old = self._served.get(engine.name)
        self._served[engine.name] = engine
        log.info(
            "engine served",
            extra={"engine": engine.name, "ref": engine.ref, "backend": engine.runtime.backend},
        )
        self._on_change(engine, old)
        if old is not None:
            old.close()


def _fingerprint(version_dir: Path) -> tuple:
    """Names, sizes and mtimes of a version directory's files: changes while a copy is in progress."""
    return (
        version_dir,
        *sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in version_dir.iterdir()),
    )
