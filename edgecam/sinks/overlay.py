"""Overlay: boxes with label and score, top-k text, counting lines and zones with their
captions, and a heads-up display (model, α, ρ, FPS, inference ms, latency), drawn in place on
a BGR frame.

What the picture says stays readable:
- text is sized from the frame's short side (:func:`font`): capitals 1/60 of it (18 px at
  1080p, 12 at 720p), never under 10 px (480x270 and the like);
- the HUD takes the first corner (top-left, top-right, bottom-left, bottom-right) that no
  object's label or box top touches (edgecam/sinks/layout.py has the places and the rule);
- a line's or zone's caption takes the first of its places (by either end of the line, its
  middle, on either side) that no label, HUD or arrow touches;
- a line's arrow starts at its middle and points to its ``in`` side, tagged "in";
- object labels are drawn last: where no place was free, a label is on top, never hidden.
:func:`render` draws and returns where it put each piece (:class:`Layout`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgecam.model.compare import panel_size
from edgecam.model.postprocess import Classification, Detection
from edgecam.sinks.layout import (Rect, arrow, beside, corners, first_free, fit, in_normal, line_spots, union,
                                  zone_spots)

FONT = cv2.FONT_HERSHEY_SIMPLEX
# a fixed, high-contrast palette (BGR), indexed by class id
PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
           (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
           (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
           (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255)]
SCENE = (0, 255, 255)     # lines, zones and their captions: yellow, which no class colour is
CAP_MIN = 10              # px: smaller Hershey capitals run together (looked at on 480x270 frames)
CAP_SHARE = 1 / 60        # of the frame's short side: 18 px capitals at 1080p, 12 px at 720p
HUD_SHARE = 0.85          # the HUD a little smaller than labels: it is read less often


@dataclass(frozen=True)
class Font:
    scale: float   # cv2's fontScale giving capitals ``cap`` px high with this OpenCV's face (:func:`face`)
    thick: int
    cap: int       # capital height in pixels
    descent: int   # below the baseline: how far "p", "g" and "_" reach, in pixels

    @property
    def pad(self) -> int:
        return max(2, round(self.cap * 0.35))


@lru_cache(maxsize=1)
def face() -> Tuple[float, float]:
    """FONT's capital height at fontScale 1.0, and how far its descenders reach below the
    baseline as a share of a capital: measured in pixels this OpenCV draws, as its faces differ
    between releases (OpenCV 4.x's Hershey simplex: 21 px and 0.35, and 25 % wider text;
    OpenCV 5.x: 20 px and 0.31)."""
    scale, base = 4.0, 200
    image = np.zeros((2 * base, 600), np.uint8)
    cv2.putText(image, "Hpg_", (20, base), FONT, scale, 255, 1, cv2.LINE_8)
    rows = np.flatnonzero(image.any(axis=1))
    top, bottom = base - int(rows[0]), int(rows[-1]) + 1 - base
    return top / scale, bottom / top


def font(frame: np.ndarray, share: float = 1.0) -> Font:
    """The text size for ``frame``: capitals CAP_SHARE of its short side times ``share``, at
    least CAP_MIN pixels; strokes 2 px thick from 14 px capitals up (thinner ones blur)."""
    cap = max(CAP_MIN, round(min(frame.shape[:2]) * CAP_SHARE * share))
    unit, reach = face()
    thick = 1 if cap < 14 else 2
    return Font(cap / unit, thick, cap, int(np.ceil(cap * reach)) + thick - 1)


@dataclass
class Layout:
    """Where :func:`render` put each piece, as pixel rectangles (x1, y1, x2, y2): for tests, and
    for keeping one piece clear of another."""
    labels: List[Rect] = field(default_factory=list)      # each box's label, in detection order
    keep: List[Rect] = field(default_factory=list)        # each label with its box's top: HUD stays off
    hud: Optional[Rect] = None
    classes: Optional[Rect] = None                        # the top-k block
    captions: List[Rect] = field(default_factory=list)    # one per line and zone, in scene order
    arrows: List[Tuple[Tuple[float, float], Tuple[float, float]]] = field(default_factory=list)  # tail, tip
    tags: List[Rect] = field(default_factory=list)        # each arrow's "in"


def _size(frame: np.ndarray) -> Tuple[int, int]:
    return frame.shape[1], frame.shape[0]


def _block_wh(lines: Sequence[str], f: Font) -> Tuple[int, int]:
    """The size of a panel of ``lines`` in font ``f``."""
    w = max(cv2.getTextSize(t, FONT, f.scale, f.thick)[0][0] for t in lines)
    return w + 2 * f.pad, 2 * f.pad + f.cap + f.descent + (len(lines) - 1) * _line_step(f)


def _line_step(f: Font) -> int:
    return f.cap + f.descent + f.pad


def _text_block(frame: np.ndarray, lines: Sequence[str], rect: Rect, f: Font, color=(255, 255, 255)) -> None:
    """Lines of text on a translucent dark panel filling ``rect``."""
    x1, y1, x2, y2 = rect
    roi = frame[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
    if roi.size:  # darken in place: one pass in OpenCV instead of three float64 passes in numpy
        cv2.addWeighted(roi, 0.45, roi, 0.0, 0.0, dst=roi)
    for i, t in enumerate(lines):
        base = y1 + f.pad + f.cap + i * _line_step(f)
        cv2.putText(frame, t, (x1 + f.pad, base), FONT, f.scale, color, f.thick, cv2.LINE_AA)


def _label_text(d: Detection) -> str:
    return f"{d.label}{'' if d.id is None else f' #{d.id}'} {d.score * 100:.0f}%"


def _label_rect(frame: np.ndarray, d: Detection, text: str, f: Font) -> Rect:
    """Above the box, or inside its top where the frame has no room above; inside the frame."""
    tw = cv2.getTextSize(text, FONT, f.scale, f.thick)[0][0]
    w, h = tw + 2 * f.pad, f.cap + f.descent + 2 * f.pad
    x1, y1 = int(round(d.box[0])), int(round(d.box[1]))
    y = y1 - h if y1 - h >= 0 else y1
    return fit((x1, y, x1 + w, y + h), _size(frame))


def draw_boxes(frame: np.ndarray, detections: Sequence[Detection], layout: Layout) -> List[str]:
    """The boxes, and where their labels go (``layout.labels``, ``layout.keep``); the labels
    themselves are drawn last, by :func:`draw_labels`. Returns the label texts."""
    f = font(frame)
    th = max(2, round(f.cap / 6))
    texts = []
    for d in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), PALETTE[d.class_id % len(PALETTE)], th, cv2.LINE_AA)
        texts.append(_label_text(d))
        label = _label_rect(frame, d, texts[-1], f)
        layout.labels.append(label)
        layout.keep.append(union(label, (x1, y1, x2, y1 + label[3] - label[1])))
    return texts


def draw_labels(frame: np.ndarray, detections: Sequence[Detection], texts: Sequence[str], layout: Layout) -> None:
    f = font(frame)
    for d, text, (x1, y1, x2, y2) in zip(detections, texts, layout.labels):
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), PALETTE[d.class_id % len(PALETTE)], -1)
        cv2.putText(frame, text, (x1 + f.pad, y1 + f.pad + f.cap), FONT, f.scale, (0, 0, 0), f.thick, cv2.LINE_AA)


def draw_classes(frame: np.ndarray, classes: Sequence[Classification], layout: Layout) -> None:
    """The top-k, bottom-left."""
    if not classes:
        return
    f = font(frame)
    lines = [f"{c.score * 100:5.1f}%  {c.label.split(',')[0]}" for c in classes]
    bw, bh = _block_wh(lines, f)
    layout.classes = fit((f.cap, frame.shape[0] - f.cap - bh, f.cap + bw, frame.shape[0] - f.cap), _size(frame))
    _text_block(frame, lines, layout.classes, f)


def hud_lines(model: str, alpha: float | None, rho: float | None, size: int, fps: float,
              inference_ms: float, extra: Sequence[str] = ()) -> List[str]:
    head = model + (f"  alpha={alpha:g}" if alpha else "") + (f"  rho={rho:.3g} ({size}px)" if rho else f"  {size}px")
    rate = f"{fps:5.1f} FPS   " if fps > 0 else ""  # no rate yet after a single frame
    return [head, f"{rate}inference {inference_ms:5.1f} ms", *extra]


def draw_hud(frame: np.ndarray, lines: Sequence[str], layout: Layout) -> None:
    """The HUD in the first corner clear of every label and box top (and the top-k)."""
    if not lines:
        return
    f = font(frame, HUD_SHARE)
    spots = corners(_size(frame), _block_wh(lines, f), f.pad)
    layout.hud = first_free(spots, layout.keep + ([layout.classes] if layout.classes else []))
    _text_block(frame, lines, layout.hud, f, color=(220, 255, 220))


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


def draw_scene(frame: np.ndarray, scene: Sequence, layout: Layout) -> None:
    """Counting lines and zones ((kind, points in pixels, caption) each), and each line's
    arrow to its in side with its "in" tag; the captions come later (:func:`draw_captions`)."""
    f = font(frame)
    th = max(2, round(f.cap / 6))
    for kind, points, _ in scene:
        pts = np.array([[round(x), round(y)] for x, y in points], np.int32)
        cv2.polylines(frame, [pts], kind == "zone", SCENE, th, cv2.LINE_AA)
        if kind == "line":
            _draw_arrow(frame, points[0], points[1], f, th, layout)


def _draw_arrow(frame: np.ndarray, p1, p2, f: Font, th: int, layout: Layout) -> None:
    """From the line's middle to its in side, three capitals long, with "in" past its tip."""
    tail, tip = arrow(p1, p2, 3 * f.cap)
    cv2.arrowedLine(frame, _px(tail), _px(tip), SCENE, th, cv2.LINE_AA, tipLength=0.35)
    tag = fit(beside(tip, in_normal(p1, p2), _block_wh(["in"], f), f.pad / 2), _size(frame))
    _text_block(frame, ["in"], tag, f, color=SCENE)
    layout.arrows.append((tail, tip))
    layout.tags.append(tag)


def _px(p) -> Tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def draw_captions(frame: np.ndarray, scene: Sequence, layout: Layout) -> None:
    """Each line's and zone's caption in its first place that no label (nor the HUD, the top-k,
    an arrow's tag or an earlier caption) touches."""
    f = font(frame)
    avoid = layout.keep + layout.tags + [r for r in (layout.hud, layout.classes) if r]
    for kind, points, caption in scene:
        wh = _block_wh([caption], f)
        if kind == "line":
            spots = line_spots(points[0], points[1], wh, f.pad, _size(frame))
        else:
            spots = zone_spots(points, wh, _size(frame))
        rect = first_free(spots, avoid)
        _text_block(frame, [caption], rect, f, color=SCENE)
        layout.captions.append(rect)
        avoid.append(rect)


def render(image: np.ndarray, result, hud_text: Sequence[str], scene: Sequence = ()) -> Layout:
    """``result`` (or nothing, for None), the counting lines and zones of ``scene`` and the HUD
    drawn on ``image`` in place; where each piece went. Order: lines, boxes, top-k, HUD,
    captions, then labels on top of all."""
    layout = Layout()
    draw_scene(image, scene, layout)
    detections = result.detections if result is not None else []
    texts = draw_boxes(image, detections, layout)
    draw_classes(image, result.classes if result is not None else [], layout)
    draw_hud(image, hud_text, layout)
    draw_captions(image, scene, layout)
    draw_labels(image, detections, texts, layout)
    return layout


def annotate(image: np.ndarray, result, hud_text: Sequence[str], scene: Sequence = ()) -> np.ndarray:
    """``image`` with ``result`` (or only the HUD, for None) and the counting lines and
    zones of ``scene`` drawn on it, in place (a comparison: a new, wider image)."""
    if isinstance(hud_text, Panels):
        return compose(image, result, hud_text)
    render(image, result, hud_text, scene)
    return image


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
            part = replace(part, detections=[replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx,
                                                             d.box[3] * sy)) for d in part.detections])
        ms = part.inference_ms if part is not None else 0.0
        lines = hud_lines(model.name, model.alpha, model.rho, model.size, 0.0, ms,
                          [model.cost_line] if model.cost_line else [])
        render(tile, part, lines + (list(panels) if i == 0 else []))
        if i:
            cv2.line(tile, (0, 0), (0, ph - 1), (255, 255, 255), 2)
        canvas[:, i * pw:(i + 1) * pw] = tile
    return canvas
