"""Anti-aliased 2-D primitives painted into a float32 ``[H, W, 3]`` canvas (values 0..255).

Every shape is a signed distance on the pixel grid of its bounding box only, so a shape costs what
it covers. Edges are soft over one pixel: sub-pixel motion (the early-action cues) stays visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Color = Sequence[float]
_CENTERS = np.arange(4096, dtype=np.float32) + 0.5  # pixel centres, sliced per shape
Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


def paint(canvas: np.ndarray, box: tuple[float, float, float, float], distance: Distance,
          color: Color, alpha: float = 1.0) -> None:
    """Blend ``color`` where ``distance(x, y) < 0`` inside ``box`` = (x0, y0, x1, y1)."""
    height, width = canvas.shape[:2]
    x0, y0 = max(int(np.floor(box[0])) - 1, 0), max(int(np.floor(box[1])) - 1, 0)
    x1, y1 = min(int(np.ceil(box[2])) + 2, width), min(int(np.ceil(box[3])) + 2, height)
    if x0 >= x1 or y0 >= y1 or alpha <= 0:
        return
    ys = _CENTERS[y0:y1, None]
    xs = _CENTERS[None, x0:x1]
    cover = np.minimum(np.maximum(0.5 - distance(xs, ys), 0.0), 1.0)
    if alpha < 1.0:
        cover *= alpha
    region = canvas[y0:y1, x0:x1]
    if canvas.shape[2] == 4:  # a premultiplied RGBA layer: the same "over" rule gives colour and alpha
        color = (*color, 1.0)
    region += cover[..., None] * (np.asarray(color, dtype=np.float32) - region)


def composite(canvas: np.ndarray, layer: np.ndarray, x0: int, y0: int) -> None:
    """Put a premultiplied RGBA ``layer`` (from painting into zeros ``[h, w, 4]``) over ``canvas`` at (x0, y0)."""
    height, width = layer.shape[:2]
    region = canvas[y0:y0 + height, x0:x0 + width]
    layer = layer[: region.shape[0], : region.shape[1]]  # the padding may pass the frame's edge
    region *= 1.0 - layer[..., 3:]
    region += layer[..., :3]


def rect(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: Color, alpha: float = 1.0) -> None:
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    paint(canvas, (x0, y0, x1, y1), lambda x, y: np.maximum(abs(x - cx) - hx, abs(y - cy) - hy), color, alpha)


def disc(canvas: np.ndarray, cx: float, cy: float, radius: float, color: Color, alpha: float = 1.0) -> None:
    paint(canvas, (cx - radius, cy - radius, cx + radius, cy + radius),
          lambda x, y: np.hypot(x - cx, y - cy) - radius, color, alpha)


def ring(canvas: np.ndarray, cx: float, cy: float, radius: float, thickness: float, color: Color) -> None:
    outer = radius + thickness / 2
    paint(canvas, (cx - outer, cy - outer, cx + outer, cy + outer),
          lambda x, y: abs(np.hypot(x - cx, y - cy) - radius) - thickness / 2, color)


def line(canvas: np.ndarray, p0: Sequence[float], p1: Sequence[float], thickness: float, color: Color,
         alpha: float = 1.0) -> None:
    """A capsule from ``p0`` to ``p1``."""
    (ax, ay), (bx, by) = p0, p1
    dx, dy = bx - ax, by - ay
    length2 = max(dx * dx + dy * dy, 1e-6)
    half = thickness / 2

    def distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / length2, 0.0, 1.0)
        return np.hypot(x - ax - t * dx, y - ay - t * dy) - half

    box = (min(ax, bx) - half, min(ay, by) - half, max(ax, bx) + half, max(ay, by) + half)
    paint(canvas, box, distance, color, alpha)


def polygon(canvas: np.ndarray, points: Sequence[Sequence[float]], color: Color, alpha: float = 1.0) -> None:
    """A convex polygon, points in either winding order."""
    pts = [(float(x), float(y)) for x, y in points]
    area2 = sum(ax * by - bx * ay for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]))
    sign = 1.0 if area2 > 0 else -1.0
    planes = []  # (point, outward unit normal) per edge
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
        nx, ny = sign * (by - ay), -sign * (bx - ax)
        norm = max((nx * nx + ny * ny) ** 0.5, 1e-6)
        planes.append((ax, ay, nx / norm, ny / norm))

    def distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = None
        for px, py, nx, ny in planes:
            d = (x - px) * nx + (y - py) * ny
            out = d if out is None else np.maximum(out, d)
        return out

    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    paint(canvas, (min(xs), min(ys), max(xs), max(ys)), distance, color, alpha)


def oriented_rect(canvas: np.ndarray, cx: float, cy: float, length: float, width: float, heading: float,
                  color: Color) -> None:
    """A rectangle centred at (cx, cy) whose long side points along ``heading`` (radians)."""
    ux, uy = np.cos(heading), np.sin(heading)
    hl, hw = length / 2, width / 2
    corners = [(cx + sx * hl * ux - sy * hw * uy, cy + sx * hl * uy + sy * hw * ux)
               for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    polygon(canvas, corners, color)
