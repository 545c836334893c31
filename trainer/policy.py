"""The input policy of a trainer from its flags: ``--frames``, ``--size``, ``--window-seconds`` / ``--window-fraction``,
``--decode``.

Each trainer passes its default :class:`SamplingPolicy` (today's values); the flags change it, and the
engine manifest records the result, so the worker samples exactly what the engine was trained on.
"""

from __future__ import annotations

import argparse
from typing import get_args

from stream_tagger.sampling import DecodeSetting, SamplingPolicy


def add_arguments(parser: argparse.ArgumentParser, default: SamplingPolicy) -> None:
    group = parser.add_argument_group("input policy (recorded in the engine manifest)")
    group.add_argument("--frames", type=int, default=default.frames, help=f"frames per clip (default {default.frames})")
    group.add_argument("--size", type=_size, default=(default.width, default.height),
                       help=f"frame size, N or WxH (default {default.width}x{default.height})")
    window = group.add_mutually_exclusive_group()
    window.add_argument("--window-seconds", type=float, default=None,
                        help="early window in seconds" + (f" (default {default.seconds:g})" if default.seconds else ""))
    window.add_argument("--window-fraction", type=float, default=None,
                        help="early window as a fraction of the clip's duration"
                        + (f" (default {default.fraction:g})" if default.fraction else ""))
    group.add_argument("--max-seconds", type=float, default=default.max_seconds,
                       help=f"cap of the window in seconds (default {default.max_seconds:g})")
    group.add_argument("--decode", choices=get_args(DecodeSetting), default=default.decode,
                       help="frames the decoder decodes: all; needed (the same pictures, non-reference frames no "
                            "target keeps skipped); reference (every non-reference B-frame skipped; faster, moves "
                            f"some sampled frames) (default {default.decode})")


def policy_from_args(args: argparse.Namespace, default: SamplingPolicy) -> SamplingPolicy:
    width, height = args.size
    fraction, seconds = default.fraction, default.seconds
    if args.window_seconds is not None:
        fraction, seconds = None, args.window_seconds
    elif args.window_fraction is not None:
        fraction, seconds = args.window_fraction, None
    max_seconds = max(args.max_seconds, seconds or 0.0)
    try:
        return SamplingPolicy(frames=args.frames, width=width, height=height, fraction=fraction, seconds=seconds,
                              max_seconds=max_seconds, decode=getattr(args, "decode", default.decode))
    except ValueError as exc:
        raise SystemExit(f"invalid input policy: {exc}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}") from exc
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"expected N or WxH of at least 8 px, got {text!r}")
    return parts[0], parts[1]
