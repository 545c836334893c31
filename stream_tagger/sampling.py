"""Which early frames an engine sees: one definition shared by the trainer and the worker.

Train/serve skew is the classic bug of video models, so the sampling rule lives here only.
An engine's manifest carries a :class:`SamplingPolicy`; the decoder turns policies into target
timestamps and keeps, for each target, the first decoded frame whose time reaches it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


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

    @model_validator(mode="after")
    def _one_window(self) -> "SamplingPolicy":
        if self.fraction is None and self.seconds is None:
            raise ValueError("a sampling policy needs `fraction` or `seconds`")
        return self

    def window_seconds(self, duration: float | None) -> float:
        """Length of the early window for a video of ``duration`` seconds (None if unknown)."""
        if self.fraction is not None and duration is not None and duration > 0:
            window = self.fraction * duration
        elif self.seconds is not None:
            window = self.seconds
        else:  # fraction of an unknown duration: the cap is the only honest bound
            window = self.max_seconds
        if duration is not None and duration > 0:
            window = min(window, duration)
        return min(window, self.max_seconds)

    def target_times(self, duration: float | None) -> list[float]:
        """Timestamps (seconds from the first frame) of the T frames to keep."""
        window = self.window_seconds(duration)
        return [window * i / self.frames for i in range(self.frames)]

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)
