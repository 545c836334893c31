"""The manifest.json of one engine version (DESIGN §3): the typed contract between trainer and worker.

Every input names where its values come from (``feed``), so the worker builds feeds from the manifest
alone, with no case per engine name:

- ``frames``: the early frames chosen by a :class:`SamplingPolicy`, uint8 RGB ``[batch, T, H, W, 3]``;
- ``fragments``: native-resolution patch mosaics of early frames chosen by a :class:`FragmentPolicy`
  (patches at the cell centres), uint8 RGB ``[batch, T, G*P, G*P, 3]``;
- ``title``: the event's title, tokenised by the :class:`HashedTokenizer` described here;
- ``constant``: an array stored in a file of the version folder (the early-action memory bank).

Manifests of schema 1 (a top-level ``sampling``, tokenizer and memory file under ``serving``, two
preprocessing layouts) load through the same model: :func:`_upgrade_v1` rewrites them on read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stream_tagger.sampling import FragmentPolicy, FramePolicy, SamplingPolicy

MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
MEMORY_NAME = "memory.npz"

EngineName = Literal["classifier", "timeliness", "early_action"]
ENGINE_NAMES: tuple[str, ...] = ("classifier", "timeliness", "early_action")


class TensorSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: Literal["uint8", "int32", "int64", "float16", "float32"]
    #: ``"batch"`` marks the dynamic batch axis; other symbolic names are dynamic too.
    shape: list[int | str]


class FramesFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["frames"] = "frames"
    sampling: SamplingPolicy


class FragmentsFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["fragments"] = "fragments"
    fragments: FragmentPolicy

    @model_validator(mode="after")
    def _served_centred(self) -> FragmentsFeed:
        if self.fragments.offsets != "centre":
            raise ValueError("an engine is served centred fragments; random offsets are the trainer's")
        return self


class TitleFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["title"] = "title"
    #: ``HashedTokenizer.config()``: buckets, max_len, char_ngrams, scheme.
    tokenizer: dict[str, Any]


class ConstantFeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["constant"] = "constant"
    #: A ``.npz`` file of the version folder, and the array's name inside it.
    file: str
    key: str


Feed = Annotated[FramesFeed | FragmentsFeed | TitleFeed | ConstantFeed, Field(discriminator="kind")]


class InputSpec(TensorSpec):
    feed: Feed


class Preprocessing(BaseModel):
    """What the graph does to its uint8 frames before the first layer (all of it happens in-graph)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    layout: str = "uint8 RGB [batch, T, H, W, 3] in; scaled, normalised and transposed inside the graph"


class TrainingRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    command: str
    seed: int
    #: ``sha256:<64 hex>`` of the dataset manifest the engine was trained on ("none" for stand-ins).
    data_hash: str
    data_clips: int | None = None
    seconds: float | None = None


class EngineManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[2] = 2
    engine: EngineName
    version: int = Field(ge=1)
    inputs: list[InputSpec]
    outputs: list[TensorSpec]
    #: Label lists per output family, e.g. {"category": [...], "tags": [...], "quality": [...]}.
    labels: dict[str, list[str]]
    preprocessing: Preprocessing = Preprocessing()
    #: Engine-specific serving parameters (aggregation defaults, ttl_hours, vote rule...).
    serving: dict[str, Any] = Field(default_factory=dict)
    training: TrainingRecord
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: sha256 of each file of the version folder other than manifest.json.
    sha256: dict[str, str]
    created_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schema_version") == 1:
            return _upgrade_v1(data)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> EngineManifest:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate input names in {names}")
        if not any(feed_policy(spec.feed) is not None for spec in self.inputs):
            raise ValueError("an engine needs at least one frames or fragments input")
        return self

    @classmethod
    def load(cls, version_dir: Path) -> EngineManifest:
        return cls.model_validate_json((Path(version_dir) / MANIFEST_NAME).read_text())

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"

    @property
    def sampling_policies(self) -> list[FramePolicy]:
        """The policies the decoder must satisfy for this engine (frames and fragments), in input order."""
        return [policy for spec in self.inputs if (policy := feed_policy(spec.feed)) is not None]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    @property
    def short_digest(self) -> str:
        return self.sha256.get(MODEL_NAME, "")[:12]

    @property
    def ref(self) -> str:
        """How records name this engine, e.g. ``classifier/3@sha256:ab12cd34ef56``."""
        return f"{self.engine}/{self.version}@sha256:{self.short_digest}"


def feed_policy(feed: Feed) -> FramePolicy | None:
    """The decoder policy behind a feed (None for titles and constants)."""
    if isinstance(feed, FramesFeed):
        return feed.sampling
    if isinstance(feed, FragmentsFeed):
        return feed.fragments
    return None


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 → 2: feeds move onto the inputs, preprocessing gets one layout."""
    data = dict(data)
    sampling = data.pop("sampling")
    serving = dict(data.get("serving", {}))
    inputs = []
    for spec in data["inputs"]:
        if spec["name"] == "title_ids":
            feed: dict[str, Any] = {"kind": "title", "tokenizer": serving.pop("tokenizer")}
        elif spec["name"] == "memory_refs":
            feed = {"kind": "constant", "file": serving.pop("memory", MEMORY_NAME), "key": "refs"}
        elif spec["name"] == "memory_labels":
            feed = {"kind": "constant", "file": MEMORY_NAME, "key": "ref_labels"}
        else:
            feed = {"kind": "frames", "sampling": sampling}
        inputs.append({**spec, "feed": feed})
    old = data.get("preprocessing", {})
    mean, std = old.get("mean", 0.45), old.get("std", 0.25)
    data.update(
        schema_version=2,
        inputs=inputs,
        serving=serving,
        preprocessing={
            "scale": old.get("scale", 1 / 255),
            "mean": mean if isinstance(mean, list) else [mean] * 3,
            "std": std if isinstance(std, list) else [std] * 3,
        },
    )
    return data


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
