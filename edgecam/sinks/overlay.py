"""Overlay: boxes with label and score, top-k text, and a heads-up display (model, α, ρ,
FPS, inference ms, latency), drawn in place on a BGR frame. Scales with the frame so it
stays legible from 640x360 to 1920x1080."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, List, Sequence

import cv2
import numpy as np

from edgecam.model.compare import panel_size
from edgecam.model.postprocess import Classification, Detection

FONT = cv2.FONT_HERSHEY_SIMPLEX
# a fixed, high-contrast palette (BGR), indexed by class id
PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
           (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
           (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
           (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255)]


def _scale(frame: np.ndarray) -> float:
    return max(0.55, min(frame.shape[:2]) / 720 * 0.8)


def _text_block(frame: np.ndarray, lines: Sequence[str], x: int, y: int, scale: float,
                color=(255, 255, 255), bg=(0, 0, 0)) -> int:
    """Lines of text on a translucent dark panel at (x, y) (top-left); returns the panel's bottom."""
    if not lines:
        return y
    th = max(1, round(scale * 2))
    sizes = [cv2.getTextSize(t, FONT, scale, th)[0] for t in lines]
    lh = max(h for _, h in sizes) + round(10 * scale)
    w = max(w for w, _ in sizes) + round(16 * scale)
    h = lh * len(lines) + round(8 * scale)
    x2, y2 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    roi = frame[y:y2, x:x2]
    if roi.size:  # darken in place: one pass in OpenCV instead of three float64 passes in numpy
        if len(set(bg)) == 1:
            cv2.addWeighted(roi, 0.45, roi, 0.0, 0.55 * bg[0], dst=roi)
        else:
            cv2.addWeighted(roi, 0.45, np.full_like(roi, bg), 0.55, 0.0, dst=roi)
    for i, t in enumerate(lines):
        cv2.putText(frame, t, (x + round(8 * scale), y + lh * (i + 1)), FONT, scale, color, th, cv2.LINE_AA)
    return y2


def draw_detections(frame: np.ndarray, detections: Iterable[Detection]) -> None:
    s = _scale(frame)
    th = max(2, round(s * 2.5))
    for d in detections:
        color = PALETTE[d.class_id % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, th, cv2.LINE_AA)
        text = f"{d.label}{'' if d.id is None else f' #{d.id}'} {d.score * 100:.0f}%"
        ts, tth = s * 0.8, max(1, round(s * 1.6))
        (tw, tht), base = cv2.getTextSize(text, FONT, ts, tth)
        ty = y1 - 4 if y1 - tht - base - 4 >= 0 else y1 + tht + base + 4
        cv2.rectangle(frame, (x1, ty - tht - base), (x1 + tw + 6, ty + base // 2), color, -1)
        cv2.putText(frame, text, (x1 + 3, ty - base // 2), FONT, ts, (0, 0, 0), tth, cv2.LINE_AA)


def draw_classes(frame: np.ndarray, classes: Sequence[Classification]) -> None:
    s = _scale(frame)
    lines = [f"{c.score * 100:5.1f}%  {c.label.split(',')[0]}" for c in classes]
    y = frame.shape[0] - (len(lines) * round(s * 40) + round(20 * s))
    _text_block(frame, lines, round(10 * s), max(0, y), s, color=(255, 255, 255))


def hud_lines(model: str, alpha: float | None, rho: float | None, size: int, fps: float,
              inference_ms: float, extra: Sequence[str] = ()) -> List[str]:
    head = model + (f"  alpha={alpha:g}" if alpha else "") + (f"  rho={rho:.3g} ({size}px)" if rho else f"  {size}px")
    rate = f"{fps:5.1f} FPS   " if fps > 0 else ""  # no rate yet after a single frame
    return [head, f"{rate}inference {inference_ms:5.1f} ms", *extra]


def draw_hud(frame: np.ndarray, lines: Sequence[str]) -> None:
    s = _scale(frame) * 0.85
    _text_block(frame, lines, round(8 * s), round(8 * s), s, color=(220, 255, 220))


def draw(frame: np.ndarray, detections: Sequence[Detection], classes: Sequence[Classification],
         hud: Sequence[str]) -> np.ndarray:
    draw_detections(frame, detections)
    draw_classes(frame, classes)
    draw_hud(frame, hud)
    return frame


class Panels(list):
    """The heads-up lines of a comparison (edgecam/model/compare.py): FPS and ``extra``, and
    ``models``, one panel each."""

    def __init__(self, models: Sequence, fps: float, extra: Sequence[str]):
        rate = [f"{fps:5.1f} FPS"] if fps > 0 else []
        super().__init__([*rate, *extra])
        self.models = list(models)


def hud(model, fps: float, extra: Sequence[str] = ()) -> List[str]:
    """The heads-up lines for a running ``model`` (a edgecam.model.Model): name, α, ρ, FPS,
    its last inference time and cost line, then ``extra`` (a comparison's: :class:`Panels`)."""
    if getattr(model, "parts", None):
        return Panels(model.parts, fps, extra)
    cost = [model.cost_line] if model.cost_line else []
    return hud_lines(model.name, model.alpha, model.rho, model.size, fps, model.engine.last_ms, [*cost, *extra])


def draw_scene(frame: np.ndarray, scene: Sequence) -> None:
    """Counting lines and zones, each with its caption: (kind, points in pixels, caption)."""
    s = _scale(frame)
    th = max(2, round(s * 2))
    for kind, points, caption in scene:
        pts = np.array([[round(x), round(y)] for x, y in points], np.int32)
        cv2.polylines(frame, [pts], kind == "zone", (0, 255, 255), th, cv2.LINE_AA)
        if kind == "line":   # an arrow head at the second point: the line's direction
            cv2.arrowedLine(frame, tuple(pts[0]), tuple(pts[1]), (0, 255, 255), th, cv2.LINE_AA, tipLength=0.03)
        x = int(min(max(pts[:, 0].min(), 0), frame.shape[1] - 1))
        y = int(min(max(pts[:, 1].min(), 0), frame.shape[0] - 1))
        _text_block(frame, [caption], x, y, s * 0.7, color=(0, 255, 255))


def annotate(image: np.ndarray, result, hud_text: Sequence[str], scene: Sequence = ()) -> np.ndarray:
    """``image`` with ``result`` (or only the HUD, for None) and the counting lines and
    zones of ``scene`` drawn on it, in place."""
    if isinstance(hud_text, Panels):
        return compose(image, result, hud_text)
    if scene:
        draw_scene(image, scene)
    if result is None:
        draw_hud(image, hud_text)
        return image
    return draw(image, result.detections, result.classes, hud_text)


def compose(image: np.ndarray, result, panels: Panels) -> np.ndarray:
    """A comparison drawn: the frame once per model, side by side (scaled to fit 1920 px),
    each panel with its model's boxes or top-k, its name, α, ρ and inference time; the FPS
    and ``panels``' other lines on the first."""
    n = len(panels.models)
    h, w = image.shape[:2]
    pw, ph = panel_size((w, h), n)
    small = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA) if (pw, ph) != (w, h) else image
    parts = getattr(result, "parts", None) or [None] * n
    shape = getattr(result, "shape", (h, w))
    canvas = np.empty((ph, pw * n, 3), np.uint8)
    for i, (model, part) in enumerate(zip(panels.models, parts)):
        tile = small.copy()
        if part is not None:
            sx, sy = pw / shape[1], ph / shape[0]
            draw_detections(tile, [replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy))
                                   for d in part.detections])
            draw_classes(tile, part.classes)
        ms = part.inference_ms if part is not None else 0.0
        lines = hud_lines(model.name, model.alpha, model.rho, model.size, 0.0, ms,
                          [model.cost_line] if model.cost_line else [])
        draw_hud(tile, lines + (list(panels) if i == 0 else []))
        if i:
            cv2.line(tile, (0, 0), (0, ph - 1), (255, 255, 255), 2)
        canvas[:, i * pw:(i + 1) * pw] = tile
    return canvas
