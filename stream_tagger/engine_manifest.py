"""The manifest.json of one engine version (DESIGN.md §3): written by the trainer, read by the worker."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stream_tagger.sampling import SamplingPolicy

MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
MEMORY_NAME = "memory.npz"


class TensorSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: Literal["uint8", "int32", "int64", "float16", "float32"]
    #: ``"batch"`` marks the dynamic batch axis; other symbolic names are dynamic too.
    shape: list[int | str]


class TrainingRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    command: str
    seed: int
    data_hash: str
    data_clips: int | None = None
    seconds: float | None = None


class EngineManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    engine: Literal["classifier", "timeliness", "early_action"]
    version: int = Field(ge=1)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    #: Label lists per head, e.g. {"category": [...], "tags": [...], "quality": [...]}.
    labels: dict[str, list[str]]
    sampling: SamplingPolicy
    #: Preprocessing that happens *inside* the graph (documented for humans and for parity tests).
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    #: Engine-specific serving parameters (aggregation defaults, ttl_hours, tokenizer, vote rule...).
    serving: dict[str, Any] = Field(default_factory=dict)
    training: TrainingRecord
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: sha256 of each file of the version directory other than manifest.json.
    sha256: dict[str, str]
    created_at: str | None = None

    @classmethod
    def load(cls, version_dir: Path) -> "EngineManifest":
        return cls.model_validate_json((version_dir / MANIFEST_NAME).read_text())

    def write(self, version_dir: Path) -> None:
        (version_dir / MANIFEST_NAME).write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")

    @property
    def short_digest(self) -> str:
        return self.sha256.get(MODEL_NAME, "")[:12]

    @property
    def ref(self) -> str:
        """How records name this engine, e.g. ``classifier/3@sha256:ab12cd34ef56``."""
        return f"{self.engine}/{self.version}@sha256:{self.short_digest}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
