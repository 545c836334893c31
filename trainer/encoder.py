"""A pretrained image encoder brought in as ONNX, and its merge with the trained heads into one engine.

Contract (docs/datasets.md): ``FILE.onnx`` takes float32 ``[N, 3, H, W]`` and returns ``[N, D]``; the
sidecar ``FILE.json`` gives ``input_size`` ``[H, W]``, per-channel ``mean`` and ``std`` (applied after
``scale``, default 1/255). The trainers:

1. cache the encoder's features of every clip's frames, computed once with ONNX Runtime through the
   *frame graph* (uint8 frames ``[B, T, H, W, 3]`` → normalise → encoder → ``[B*T, D]``), which is
   exactly the front of the published engine, so training and serving cannot disagree;
2. train only the heads in torch on those features;
3. publish ``onnx.compose`` of the frame graph and the exported heads: one ONNX model per engine.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from stream_tagger.engines.manifest import Preprocessing
from stream_tagger.sampling import SamplingPolicy
from trainer.datasets.views import decode_clips
from trainer.export import export_onnx

ENCODE_BATCH = 64  # frames per ONNX Runtime call
#: The edge between the frame graph and the heads: the heads graph's input of that name is fed by it.
FEATURES = "encoder_features"


class EncoderSidecar(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    input_size: tuple[int, int] = Field(description="[H, W] the encoder takes")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1 / 255


class EncoderInput(nn.Module):
    """uint8 frames ``[B, T, H, W, 3]`` → normalised float ``[B*T, 3, H, W]`` (exported as the graph's front)."""

    def __init__(self, sidecar: EncoderSidecar):
        super().__init__()
        self.scale = sidecar.scale
        self.register_buffer("mean", torch.tensor(sidecar.mean).view(1, 1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(sidecar.std).view(1, 1, 3, 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(torch.float32).permute(0, 1, 4, 2, 3) * self.scale
        x = (x - self.mean) / self.std
        return x.reshape(-1, x.shape[2], x.shape[3], x.shape[4])


@dataclass
class ImageEncoder:
    path: Path
    sidecar: EncoderSidecar
    model: onnx.ModelProto
    dim: int
    opset: int
    sha256: str

    @classmethod
    def load(cls, path: str | Path) -> ImageEncoder:
        path = Path(path)
        sidecar_path = path.with_suffix(".json")
        if not path.is_file() or not sidecar_path.is_file():
            raise SystemExit(f"--encoder {path}: needs the ONNX file and its sidecar {sidecar_path.name}")
        try:
            sidecar = EncoderSidecar.model_validate_json(sidecar_path.read_text())
        except ValidationError as exc:
            raise SystemExit(f"{sidecar_path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
        model = onnx.load(str(path))
        inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        if len(inputs) != 1 or len(model.graph.output) != 1:
            raise SystemExit(f"--encoder {path}: expected one input [N,3,H,W] and one output [N,D]")
        out_shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
        if len(out_shape) != 2 or out_shape[1] <= 0:
            raise SystemExit(f"--encoder {path}: output must be [N, D] with a fixed D, got {out_shape}")
        opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        digest = hashlib.sha256(path.read_bytes() + sidecar_path.read_bytes()).hexdigest()
        return cls(path, sidecar, model, out_shape[1], opset, digest)

    def policy(self, policy: SamplingPolicy) -> SamplingPolicy:
        """``policy`` at the encoder's input size (the sidecar decides the size, not ``--size``)."""
        height, width = self.sidecar.input_size
        return policy.model_copy(update={"height": height, "width": width})

    def frame_graph(self, policy: SamplingPolicy) -> onnx.ModelProto:
        """uint8 ``frames [B, T, H, W, 3]`` → ``encoder_features [B*T, D]``: the front of every engine built on it."""
        shape = (1, policy.frames, policy.height, policy.width, 3)
        with tempfile.TemporaryDirectory() as scratch:
            front = Path(scratch) / "front.onnx"
            export_onnx(EncoderInput(self.sidecar), {"frames": np.zeros(shape, np.uint8)}, ["pixels"], front,
                        opset=self.opset)
            front_model = onnx.load(str(front))
        encoder_in = next(i.name for i in self.model.graph.input
                          if i.name not in {t.name for t in self.model.graph.initializer})
        merged = _merge(front_model, self.model, [("pixels", encoder_in)], "front/", "encoder/")
        return _rename(merged, {"front/frames": "frames", f"encoder/{self.model.graph.output[0].name}": FEATURES})

    def features_view(self, policy: SamplingPolicy) -> FeaturesView:
        return FeaturesView(self, self.policy(policy))


@dataclass(frozen=True, eq=False)
class FeaturesView:
    """Cached view: the encoder's per-frame features ``[T, D]`` of each clip."""

    encoder: ImageEncoder
    policy: SamplingPolicy
    name: str = "features"

    @property
    def key(self) -> str:
        return f"features:{self.encoder.sha256}:{self.policy.model_dump_json()}"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def item_shape(self) -> tuple[int, ...]:
        return (self.policy.frames, self.encoder.dim)

    def compute(self, paths: Sequence[Path]) -> tuple[np.ndarray, dict[int, str]]:
        frames, failures = decode_clips(paths, self.policy)
        session = ort.InferenceSession(self.encoder.frame_graph(self.policy).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        clips_per_call = max(1, ENCODE_BATCH // self.policy.frames)
        out = np.zeros((len(paths), *self.item_shape), np.float32)
        for start in range(0, len(paths), clips_per_call):
            chunk = frames[start:start + clips_per_call]
            features = session.run([FEATURES], {"frames": chunk})[0]
            out[start:start + len(chunk)] = features.reshape(len(chunk), *self.item_shape)
        return out, failures


def merge_engine(encoder: ImageEncoder, policy: SamplingPolicy, heads_path: Path, out_path: Path) -> Path:
    """One graph: the encoder's frame graph feeding the heads' ``features`` input; other inputs stay."""
    heads = onnx.load(str(heads_path))
    merged = _merge(encoder.frame_graph(policy), heads, [(FEATURES, FEATURES)], "", "heads/")
    renames = {f"heads/{v.name}": v.name for v in [*heads.graph.input, *heads.graph.output] if v.name != FEATURES}
    merged = _rename(merged, renames)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out_path))
    return out_path


def _merge(first: onnx.ModelProto, second: onnx.ModelProto, io_map, prefix1: str, prefix2: str) -> onnx.ModelProto:
    ir = max(first.ir_version, second.ir_version)
    first.ir_version = second.ir_version = ir
    opsets = {o.domain or "ai.onnx": o.version for o in first.opset_import}
    clash = [o for o in second.opset_import if opsets.get(o.domain or "ai.onnx", o.version) != o.version]
    if clash:
        raise SystemExit(f"encoder and heads import different opsets ({clash}); re-export the encoder at opset "
                         f"{opsets.get('ai.onnx')}")
    return onnx.compose.merge_models(first, second, io_map=list(io_map),  # merge_models prefixes these itself
                                     prefix1=prefix1 or None, prefix2=prefix2 or None)


def _rename(model: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    """Rename graph inputs/outputs (and every edge that carries them)."""
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    return model


def describe(encoder: ImageEncoder | None) -> dict:
    """What the engine manifest records about the encoder (``training.encoder``)."""
    if encoder is None:
        return {}
    return {"encoder": {"file": encoder.path.name, "sha256": encoder.sha256, "dim": encoder.dim,
                        **json.loads(encoder.sidecar.model_dump_json())}}


def encoder_preprocessing(encoder: ImageEncoder) -> Preprocessing:
    sidecar = encoder.sidecar
    return Preprocessing(scale=sidecar.scale, mean=sidecar.mean, std=sidecar.std)


def merged_parity(heads: nn.Module, encoder: ImageEncoder, policy: SamplingPolicy, merged: Path, frames: np.ndarray,
                  atol: float, extra: dict[str, np.ndarray] | None = None) -> float:
    """Max |merged graph − (encoder under ORT → heads in torch)|: the merge changed nothing."""
    front = ort.InferenceSession(encoder.frame_graph(policy).SerializeToString(), providers=["CPUExecutionProvider"])
    features = front.run([FEATURES], {"frames": frames})[0]
    with torch.no_grad():
        args = [torch.from_numpy(features), *(torch.from_numpy(v) for v in (extra or {}).values())]
        expected = heads(*args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    session = ort.InferenceSession(str(merged), providers=["CPUExecutionProvider"])
    got = session.run(None, {"frames": frames, **(extra or {})})
    diff = max(float(np.max(np.abs(g.astype(np.float64) - e.numpy().astype(np.float64)), initial=0.0))
               for g, e in zip(got, expected))
    print(f"parity {merged.name} (encoder + heads) batch={len(frames)}: max |merged - parts| = {diff:.2e}")
    assert diff <= atol, f"merged graph and its parts disagree: {diff:.3e} > {atol:g}"
    return diff
