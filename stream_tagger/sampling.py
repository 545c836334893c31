"""Which early frames an engine sees: one definition shared by the trainer and the worker.

Train/serve skew is the classic bug of video models, so the sampling rule lives here only.
An engine's manifest carries a :class:`SamplingPolicy` per frames input (frames resized to H×W) and a
:class:`FragmentPolicy` per fragments input (a grid of native-resolution patches, for quality); the
decoder turns policies into target timestamps and keeps, for each target, the first decoded frame
whose time reaches it. Both share the early-window rule below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

#: Which frames the decoder decodes for a policy (see ``SamplingPolicy.decode``).
DecodeSetting = Literal["all", "needed", "reference"]


class SamplingPolicy(BaseModel):
    """T frames spread uniformly over the early window of a video.

    The window is ``fraction`` of the duration (when the duration is known), else ``seconds``;
    it is always capped by ``max_seconds`` so a two-hour video costs no more than a short one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    frames: int = Field(ge=1, le=256)
    height: int = Field(ge=8, le=1024)
    width: int = Field(ge=8, le=1024)
    fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    seconds: float | None = Field(default=None, gt=0.0)
    max_seconds: float = Field(default=4.0, gt=0.0)
    #: ``all``: every frame is decoded. ``needed``: the same pictures as ``all``, from fewer decoded
    #: frames: a non-reference frame (no other frame is predicted from it: the non-reference B-frames of
    #: H.264/HEVC) is decoded only when a target keeps it, which the packets' timestamps tell before
    #: decoding. ``reference``: no non-reference frame is ever decoded (FFmpeg's ``skip_frame=NONREF``),
    #: faster still, but a target that fell on a skipped frame gets the next decoded one instead, so an
    #: engine must be evaluated (or trained) with the value it is served with.
    decode: DecodeSetting = "all"
    #: ``False``: the decoder may skip H.264/HEVC's in-loop deblocking filter (FFmpeg's
    #: ``skip_loop_filter=all``), and PyAV does: faster, and every decoded picture is blockier than the
    #: encoder meant (the error also carries into the frames predicted from it). A hardware decoder
    #: (NVDEC) deblocks regardless, so an engine may declare ``False`` only once its figures hold on
    #: both pictures: ``stream-tagger-train adopt-decode`` evaluates it with and without the filter.
    #: For the same reason, when another policy of the same video needs the filter, PyAV serves this
    #: one from that deblocked pass instead of decoding the video twice.
    deblock: bool = True

    @model_serializer(mode="wrap")
    def _without_default_decode(self, handler: Any) -> dict[str, Any]:
        return _without_default_decode(self, handler(self))

    @model_validator(mode="after")
    def _one_window(self) -> SamplingPolicy:
        _check_window(self)
        return self

    def window_seconds(self, duration: float | None) -> float:
        """Length of the early window for a video of ``duration`` seconds (None if unknown)."""
        return _window_seconds(self, duration)

    def target_times(self, duration: float | None) -> list[float]:
        """Timestamps (seconds from the first frame) of the T frames to keep."""
        return _target_times(self, duration)

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


class FragmentPolicy(BaseModel):
    """T early frames, each cut into a ``grid``×``grid`` mosaic of ``patch``×``patch`` native pixels.

    Quality lives at the scale of the pixels (blocking, ringing, noise), which resizing a frame
    erases; so, as FAST-VQA and DOVER do, the frame is split into grid cells and one patch of native
    pixels is kept per cell, and the patches are laid side by side: uint8 RGB ``[T, G*P, G*P, 3]``.
    A patch sits at the cell's centre when serving (``offsets="centre"``, the only value a manifest
    may carry) and at a random place inside its cell when training (``offsets="random"``, ``draws``
    independent mosaics per clip, reproducible from ``seed``; the layout is then
    ``[T, draws, G*P, G*P, 3]``). The window rule is :class:`SamplingPolicy`'s.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    frames: int = Field(ge=1, le=64)
    grid: int = Field(ge=1, le=16)
    #: Even, so that a patch covers whole 4:2:0 chroma samples.
    patch: int = Field(ge=8, le=128, multiple_of=2)
    fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    seconds: float | None = Field(default=None, gt=0.0)
    max_seconds: float = Field(default=4.0, gt=0.0)
    offsets: Literal["centre", "random"] = "centre"
    draws: int = Field(default=1, ge=1, le=64)
    seed: int = Field(default=0, ge=0)
    #: As :attr:`SamplingPolicy.decode`: give it the value of the engine's frames input, so that one
    #: decoding pass serves both inputs.
    decode: DecodeSetting = "all"
    #: As :attr:`SamplingPolicy.deblock`.
    deblock: bool = True

    @model_serializer(mode="wrap")
    def _without_default_decode(self, handler: Any) -> dict[str, Any]:
        return _without_default_decode(self, handler(self))

    @model_validator(mode="after")
    def _one_window(self) -> FragmentPolicy:
        _check_window(self)
        if self.offsets == "centre" and (self.draws != 1 or self.seed != 0):
            raise ValueError("centred fragments are one fixed mosaic: draws=1, seed=0")
        return self

    def window_seconds(self, duration: float | None) -> float:
        return _window_seconds(self, duration)

    def target_times(self, duration: float | None) -> list[float]:
        return _target_times(self, duration)

    def training(self, draws: int, seed: int) -> FragmentPolicy:
        """The same mosaic with ``draws`` random patch positions per cell (the trainer's view)."""
        return self.model_copy(update={"offsets": "random", "draws": draws, "seed": seed})

    def serving(self) -> FragmentPolicy:
        return self.model_copy(update={"offsets": "centre", "draws": 1, "seed": 0})

    @property
    def height(self) -> int:
        return self.grid * self.patch

    @property
    def width(self) -> int:
        return self.grid * self.patch

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


#: What a decoder can be asked for: resized frames or native-resolution fragments.
FramePolicy = SamplingPolicy | FragmentPolicy


def _without_default_decode(policy: FramePolicy, data: dict[str, Any]) -> dict[str, Any]:
    # A policy that decodes every frame, deblocked, serialises exactly as before the fields existed, so older
    # manifests, workers and frame caches keyed by the policy's JSON stay as they were.
    if policy.decode == "all":
        data.pop("decode", None)
    if policy.deblock:
        data.pop("deblock", None)
    return data


def _check_window(policy: FramePolicy) -> None:
    if policy.fraction is None and policy.seconds is None:
        raise ValueError("a sampling policy needs `fraction` or `seconds`")


def _window_seconds(policy: FramePolicy, duration: float | None) -> float:
    if policy.fraction is not None and duration is not None and duration > 0:
        window = policy.fraction * duration
    elif policy.seconds is not None:
        window = policy.seconds
    else:  # fraction of an unknown duration: the cap is the only honest bound
        window = policy.max_seconds
    if duration is not None and duration > 0:
        window = min(window, duration)
    return min(window, policy.max_seconds)


def _target_times(policy: FramePolicy, duration: float | None) -> list[float]:
    window = _window_seconds(policy, duration)
    return [window * i / policy.frames for i in range(policy.frames)]
