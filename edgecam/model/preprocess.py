"""Preprocess: a frame (BGR, any size) to the model's input tensor, and the exact transform
that maps model coordinates back to frame pixels. Pure functions, no state."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from edgecam.model.engine import InputSpec

# MobileNet inputs are trained on pixels normalised to [-1, 1]: real = (p - 127.5) / 127.5.
MEAN = 127.5
STD = 127.5


@dataclass(frozen=True)
class Transform:
    """frame_x = ox + x_norm * sx and frame_y = oy + y_norm * sy, where (x_norm, y_norm) in
    [0, 1] are coordinates over the model input; the frame is frame_w x frame_h."""

    ox: float
    oy: float
    sx: float
    sy: float
    frame_w: int
    frame_h: int

    def box_to_frame(self, ymin: float, xmin: float, ymax: float, xmax: float) -> Tuple[float, float, float, float]:
        """An SSD box (normalised, y-first) as [x1, y1, x2, y2] frame pixels, clipped to the frame."""
        x1 = min(max(self.ox + xmin * self.sx, 0.0), self.frame_w)
        x2 = min(max(self.ox + xmax * self.sx, 0.0), self.frame_w)
        y1 = min(max(self.oy + ymin * self.sy, 0.0), self.frame_h)
        y2 = min(max(self.oy + ymax * self.sy, 0.0), self.frame_h)
        return x1, y1, x2, y2


@dataclass(frozen=True)
class Plan:
    """How one frame size becomes one input size: a crop of the frame, resized to (rw, rh)
    and placed at (px, py) on the input canvas."""

    crop: Tuple[int, int, int, int]   # x0, y0, w, h in the frame
    size: Tuple[int, int]             # rw, rh: the resized crop
    pad: Tuple[int, int]              # px, py: where it sits on the in_w x in_h canvas
    in_size: Tuple[int, int]          # in_w, in_h
    transform: Transform


def plan(frame_w: int, frame_h: int, in_w: int, in_h: int, mode: str = "stretch") -> Plan:
    if mode == "stretch":
        crop, size, pad = (0, 0, frame_w, frame_h), (in_w, in_h), (0, 0)
    elif mode == "letterbox":
        s = min(in_w / frame_w, in_h / frame_h)
        rw, rh = max(1, round(frame_w * s)), max(1, round(frame_h * s))
        crop, size, pad = (0, 0, frame_w, frame_h), (rw, rh), ((in_w - rw) // 2, (in_h - rh) // 2)
    elif mode == "crop":
        if frame_w * in_h > frame_h * in_w:      # frame wider than the input: trim the sides
            cw, ch = max(1, round(frame_h * in_w / in_h)), frame_h
        else:                                    # taller: trim top and bottom
            cw, ch = frame_w, max(1, round(frame_w * in_h / in_w))
        crop, size, pad = ((frame_w - cw) // 2, (frame_h - ch) // 2, cw, ch), (in_w, in_h), (0, 0)
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    x0, y0, cw, ch = crop
    rw, rh = size
    px, py = pad
    # input pixel u = x_norm * in_w lies (u - px) / rw of the way across the crop
    sx, sy = in_w * cw / rw, in_h * ch / rh
    t = Transform(ox=x0 - px * cw / rw, oy=y0 - py * ch / rh, sx=sx, sy=sy, frame_w=frame_w, frame_h=frame_h)
    return Plan(crop, size, pad, (in_w, in_h), t)


@functools.lru_cache(maxsize=16)
def quantization_lut(spec: InputSpec) -> np.ndarray | None:
    """A 256-entry table from pixel value to the model's input value (pixels normalised to
    [-1, 1], then quantized with the model's own scale and zero point; float models get the
    real values), or None where the model takes the pixels as they are."""
    p = np.arange(256, dtype=np.float64)
    real = (p - MEAN) / STD
    if spec.dtype == np.float32:
        return real.astype(np.float32)
    info = np.iinfo(spec.dtype)
    if not spec.scale:
        q = p if spec.dtype == np.uint8 else p - 128
    else:
        q = np.round(real / spec.scale + spec.zero_point)
    lut = np.clip(q, info.min, info.max)
    if spec.dtype == np.uint8 and np.abs(lut - p).max() <= 1:
        # within one quantization step of the raw pixel (scale ~1/128, zero ~128): the
        # published uint8 MobileNets are meant to be fed the pixels as they are
        return None
    return lut.astype(spec.dtype)


def preprocess(frame_bgr: np.ndarray, spec: InputSpec, mode: str = "stretch",
               interpolation: int = cv2.INTER_LINEAR, prepared: Plan | None = None) -> Tuple[np.ndarray, Transform]:
    """(1, H, W, 3) RGB tensor in the model's dtype, and the transform back to the frame.
    Pass ``prepared`` (from plan) to reuse the plan for every frame of one size."""
    fh, fw = frame_bgr.shape[:2]
    p = prepared or plan(fw, fh, spec.width, spec.height, mode)
    x0, y0, cw, ch = p.crop
    src = frame_bgr[y0:y0 + ch, x0:x0 + cw]
    rw, rh = p.size
    resized = cv2.resize(src, (rw, rh), interpolation=interpolation) if (cw, ch) != (rw, rh) else src
    if p.pad != (0, 0) or (rw, rh) != p.in_size:
        canvas = np.zeros((spec.height, spec.width, 3), np.uint8)
        px, py = p.pad
        canvas[py:py + rh, px:px + rw] = resized
        resized = canvas
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    lut = quantization_lut(spec)
    tensor = lut[rgb] if lut is not None else rgb
    return tensor[np.newaxis], p.transform
