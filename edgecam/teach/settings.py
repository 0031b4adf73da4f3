"""The ``teach:`` section of the config schema (see edgecam/config.py): the taught sets a run
applies (edgecam/teach/), and how."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from edgecam.schema import setting


def parse_region(value) -> List[float]:
    """``X1,Y1,X2,Y2`` in fractions of the frame (or a list of four numbers)."""
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"a region is X1,Y1,X2,Y2 in fractions of the frame, not {value!r}") from None
    if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
        raise ValueError(f"a region's corners are fractions of the frame with X1 < X2 and Y1 < Y2, not {value!r}")
    return [x1, y1, x2, y2]


def frame_states(t: "TeachConfig") -> List[str]:
    """The labels of the frame set (its folders, sorted; no model read): for MQTT's discovery."""
    try:
        return sorted(p.name for p in Path(t.frame_set).iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if t.frame_set else []
    except OSError:
        return []


@dataclass
class TeachConfig:
    set: Optional[str] = setting(None, flag="--teach", metavar="SET", path=True,
                                 help="a taught set (SET/<label>/*.jpg): tracked objects are relabelled to "
                                      "its labels, or suppressed for not-<label> (null: none)")
    frame_set: Optional[str] = setting(None, flag="--teach-frame", metavar="SET", path=True,
                                       help="a taught set of frame states: each result's frame (or "
                                            "teach.region) is classified into its labels (null: none)")
    region: Optional[str] = setting(None, flag="--teach-region", metavar="X1,Y1,X2,Y2",
                                    help="the part of the frame --teach-frame classifies, in fractions "
                                         "(null: the whole frame)")
    model: Optional[str] = setting(None, help="the classifier whose embeddings a set is built with: v2, "
                                              "v3 or a .tflite path (null: the set's own, else v2)")
    margin: Optional[float] = setting(None, range=(-1.0, 1.0),
                                      help="least cosine similarity to a taught label's mean to relabel "
                                           "or suppress (null: learned from the examples)")
    every_s: float = setting(1.0, range=(0.0, 3600.0),
                             help="an object is embedded when it appears, then again every N seconds")
    pad: float = setting(0.1, range=(0.0, 1.0),
                         help="a detection's crop is its box grown by this fraction on each side")
    hold: int = setting(3, range=(1, 1000),
                        help="results in a row a new frame state must win before it is reported")
