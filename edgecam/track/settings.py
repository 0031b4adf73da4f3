"""The settings of the tracking stage and of the outputs it feeds (events are output.events;
clips are output.clips and the clips section), declared with the config schema's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from edgecam.errors import ConfigError
from edgecam.schema import HOT, setting
from edgecam.track.rules import parse_line, parse_zone


@dataclass
class TrackConfig:
    enabled: Optional[bool] = setting(None, flag="--track", flag_value=True,
                                      help="give each detected object an id that follows it (null: on for "
                                           "detection models on video and cameras, off for photos)")
    low: float = setting(0.25, range=(0.0, 1.0),
                         help="lowest score that may continue a track (ByteTrack's second stage); "
                              "new tracks need postprocess.threshold")
    iou: float = setting(0.2, range=(0.0, 1.0),
                         help="least IoU between a track's predicted box and a detection to match")
    max_missed: int = setting(15, range=(0, 10000),
                              help="inferences a track survives without a detection")
    min_hits: int = setting(2, range=(1, 1000),
                            help="detections before a track gets its id and is shown")
    predict: bool = setting(True,
                            help="live mode: draw boxes where their motion puts them on frames between results")


@dataclass
class FiltersConfig:
    allow: List[str] = setting([], flag="--allow", metavar="LABEL",
                               help="only these labels (repeatable; empty: all)")
    deny: List[str] = setting([], help="never these labels")
    min_score: Dict[str, float] = setting({}, range=(0.0, 1.0),
                                          help="per-label minimum score, e.g. {person: 0.6}")
    min_area: float = setting(0.0, range=(0.0, 1.0),
                              help="smallest box, as a fraction of the frame's area")
    max_area: float = setting(1.0, range=(0.0, 1.0),
                              help="largest box, as a fraction of the frame's area")
    show_after: int = setting(1, range=(1, 1000),
                              help="hysteresis: show an object once seen in show_after of the last of_last inferences")
    of_last: int = setting(1, range=(1, 1000), help="hysteresis window (inferences)")


@dataclass
class RulesConfig:
    lines: List[str] = setting([], flag="--line", metavar="X1,Y1,X2,Y2[,NAME]", parse=parse_line, reload=HOT,
                               live=True, alias="lines",
                               help="a counting line in fractions of the frame (repeatable)")
    zones: List[dict] = setting([], parse=parse_zone, reload=HOT, live=True, alias="zones",
                                help="zones: [{name: door, points: [[x, y], ...]}] in fractions of the frame")
    anchor: str = setting("bottom", choices=("bottom", "center", "top"),
                          help="the point of a box that crosses lines and enters zones")
    inertia: int = setting(3, range=(1, 1000),
                           help="inferences in a row a point must be inside (outside) a zone to enter (leave) it")


@dataclass
class MotionConfig:
    gate: bool = setting(False, flag="--motion-gate", flag_value=True,
                         help="skip inference while nothing moves (tracks coast)")
    pixel_delta: int = setting(16, range=(1, 255), help="grey-level change that counts a pixel as moved")
    min_changed: float = setting(0.002, range=(0.0, 1.0),
                                 help="fraction of moved pixels that counts as motion")
    max_skip_s: float = setting(10.0, range=(0.0, 86400.0),
                                help="infer at least this often even when nothing moves (seconds)")


@dataclass
class ClipsConfig:
    pre_s: float = setting(3.0, range=(0.0, 60.0), help="seconds kept from before the event")
    post_s: float = setting(3.0, range=(0.0, 600.0), help="seconds recorded after the last event")
    events: List[str] = setting([], choices=("new", "cross", "enter", "leave", "lost"),
                            help="event kinds that start a clip (empty: new, cross, enter)")
    labels: List[str] = setting([], help="only events of these labels (empty: all)")
    annotated: bool = setting(True, help="record the drawn frames (false: the clean camera frames)")
    buffer_mb: float = setting(64.0, range=(1.0, 4096.0), help="cap on the pre-roll buffer's memory")
    keep_mb: float = setting(1000.0, range=(0.0, 1e9),
                             help="delete the oldest clips beyond this total, sidecars included (0 = keep all)")
    keep_days: float = setting(30.0, range=(0.0, 3650.0),
                               help="delete clips older than this (0 = keep all)")


def check_together(cfg) -> None:
    """What no single key can check: ConfigError (one sentence) for settings that contradict."""
    f = cfg.filters
    if f.show_after > f.of_last:
        raise ConfigError(f"config key 'filters.show_after' ({f.show_after}) cannot be more than "
                          f"'filters.of_last' ({f.of_last}): an object seen N times in the last M inferences")
    if f.min_area > f.max_area:
        raise ConfigError(f"config key 'filters.min_area' ({f.min_area:g}) cannot be more than "
                          f"'filters.max_area' ({f.max_area:g})")
