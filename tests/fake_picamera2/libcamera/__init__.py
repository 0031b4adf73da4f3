"""A stand-in for libcamera's Python module, as far as picamera2's users touch it: Transform,
the orientation a configuration asks the ISP for (``transform=`` of create_*_configuration).
Like the real one: Transform(rotation=0, hflip=False, vflip=False, transpose=False), with a
rotation folded into flips and a transpose (90 and 270 degrees need one)."""

from __future__ import annotations


class Transform:
    def __init__(self, rotation: int = 0, hflip=False, vflip=False, transpose=False):
        if rotation % 90:
            raise ValueError(f"Invalid rotation {rotation}")
        turn = rotation // 90 % 4
        h, v, t = bool(hflip), bool(vflip), bool(transpose)
        if turn == 2:
            h, v = not h, not v
        elif turn:                      # a quarter turn is a transpose and one flip
            t = not t
            h, v = (v, not h) if turn == 1 else (not v, h)
        self.hflip, self.vflip, self.transpose = h, v, t

    def __eq__(self, other) -> bool:
        return isinstance(other, Transform) and (self.hflip, self.vflip, self.transpose) == (
            other.hflip, other.vflip, other.transpose)

    def __repr__(self) -> str:
        name = ("h" if self.hflip else "") + ("v" if self.vflip else "") + ("flip" if self.hflip or self.vflip else "")
        return f"<libcamera.Transform '{name + ('/transpose' if self.transpose else '') or 'identity'}'>"
