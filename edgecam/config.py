"""Configuration: loaded once from config.yaml into typed objects, validated with messages
that name the bad key, then overridden by command-line flags.

The dataclass fields below are the one schema: each field's metadata (see :func:`setting`)
carries its choices, its range, its command-line flag and help, and what a SIGHUP reload
does with it. The argument parser (cli.py), the validation here, the reload (service/reload.py)
and the test of README's table all read it from :func:`settings`."""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

from edgecam.errors import ConfigError
from edgecam.track.rules import parse_line, parse_zone

# what a SIGHUP reload does with a changed key
HOT = "hot"            # applied at once
MODEL = "model"        # the model is reloaded in place (the old one keeps running if it fails)
RESTART = "restart"    # needs a restart: logged, not applied
UNUSED = "unused"      # used only when provisioning: nothing to apply


def setting(default: Any, *, flag: Optional[str] = None, help: str = "", metavar: Optional[str] = None,
            choices: Optional[Sequence[str]] = None, range: Optional[Tuple[float, float]] = None,
            reload: str = RESTART, flag_value: Any = None,
            parse: Optional[Callable[[Any], Any]] = None) -> Any:
    """A config field and its schema: ``flag`` is its command-line override (``flag_value``:
    the value a bare flag sets, for switches; a list's flag is repeatable), ``choices`` and
    ``range`` bound its value (each item's, for a list or a mapping), ``reload`` says what a
    SIGHUP does with a change, ``parse`` checks a list's items (ValueError: one sentence)."""
    meta = {"flag": flag, "help": help, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "range": range, "reload": reload, "flag_value": flag_value, "parse": parse}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    name: str = setting("v2_ssd", flag="--model", metavar="NAME|PATH", reload=MODEL,
                        help="catalogue name (v2_ssd, v1_ssd, v1, v2, v3, v1_0.25_128, ...) or a .tflite file")
    labels: Optional[str] = setting(None, flag="--labels", metavar="PATH", reload=MODEL,
                                    help="label file (default: the catalogue's, or the model's metadata)")
    dir: Optional[str] = setting(None, flag="--model-dir", metavar="DIR", reload=MODEL,
                                 help="where provisioned models live")
    mirror: Optional[str] = setting(None, reload=UNUSED,
                                    help="local mirror folder to provision from (env EDGECAM_MODEL_MIRROR)")
    runtime: str = setting("auto", flag="--runtime", choices=("auto", "ai_edge_litert", "tflite_runtime"),
                           reload=MODEL, help="TFLite runtime")
    threads: int = setting(2, flag="--threads", metavar="N", range=(1, 64), reload=MODEL,
                           help="interpreter threads")
    workers: Optional[int] = setting(None, range=(1, 64), reload=UNUSED,
                                     help="file mode: frames inferred at once (null: as many as threads); live mode has no use for it")


@dataclass
class PreprocessConfig:
    rho: Optional[float] = setting(None, flag="--rho", metavar="FLOAT", range=(0.1, 2.0), reload=MODEL,
                                   help="resolution multiplier ρ: input = ρ x 224 (classifiers) or ρ x 300 (SSD)")
    resize: str = setting("stretch", flag="--resize", choices=("stretch", "letterbox", "crop"), reload=MODEL,
                          help="how a frame becomes the model input")


@dataclass
class PostprocessConfig:
    threshold: float = setting(0.5, flag="--threshold", metavar="FLOAT", range=(0.0, 1.0), reload=HOT,
                               help="minimum detection score")
    top_k: int = setting(3, flag="--top-k", metavar="N", range=(1, 1000), reload=HOT,
                         help="classes shown for a classifier")


@dataclass
class SourceConfig:
    uri: str = setting("auto", flag="--source", metavar="PATH|URL|INDEX",
                       help="auto, picamera2, 0, /dev/video0, rtsp://..., http://..., csi://0, "
                            "a video file, an image or a folder")
    width: int = setting(1280, range=(1, 16384), help="capture width")
    height: int = setting(720, range=(1, 16384), help="capture height")
    fps: float = setting(30.0, range=(0.1, 1000.0), help="capture rate")
    fourcc: Optional[str] = setting("MJPG", help="webcam pixel format")
    realtime: bool = setting(False, flag="--realtime", flag_value=True,
                             help="play a video file at its own frame rate, as if live")
    reconnect_max_s: float = setting(10.0, range=(0.1, 3600.0),
                                     help="longest wait between reconnect attempts (seconds)")


@dataclass
class OutputConfig:
    video: Optional[str] = setting(None, flag="--output", metavar="FILE",
                                   help="write the annotated video (.mp4, .avi)")
    json: Optional[str] = setting(None, flag="--json", metavar="FILE",
                                  help="write one JSON line per frame ('-' for stdout)")
    display: str = setting("window", flag="--display", choices=("window", "fullscreen", "none"),
                           help="window, fullscreen (kiosk) or none")
    web: Optional[str] = setting(None, flag="--web", metavar="HOST:PORT",
                                 help="serve the browser view (e.g. 127.0.0.1:8080; 0.0.0.0:8080 for the network)")
    snapshot_dir: str = setting(".", reload=HOT, help="where the `s` key saves snapshots")
    events: Optional[str] = setting(None, flag="--events", metavar="FILE",
                                    help="write one JSON line per tracking event ('-' for stdout)")
    clips: Optional[str] = setting(None, flag="--clips", metavar="DIR",
                                   help="live mode: record a clip around each event into DIR (see clips.*)")


@dataclass
class OverlayConfig:
    enabled: bool = setting(True, flag="--no-overlay", flag_value=False, reload=HOT,
                            help="draw nothing on the frames")
    show_cost: bool = setting(True, reload=HOT, help="show the model's mult-adds and pointwise share")


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
    predict: bool = setting(True, reload=HOT,
                            help="live mode: draw boxes where their motion puts them on frames between results")


@dataclass
class FiltersConfig:
    allow: List[str] = setting([], flag="--allow", metavar="LABEL", reload=HOT,
                               help="only these labels (repeatable; empty: all)")
    deny: List[str] = setting([], reload=HOT, help="never these labels")
    min_score: Dict[str, float] = setting({}, range=(0.0, 1.0), reload=HOT,
                                          help="per-label minimum score, e.g. {person: 0.6}")
    min_area: float = setting(0.0, range=(0.0, 1.0), reload=HOT,
                              help="smallest box, as a fraction of the frame's area")
    max_area: float = setting(1.0, range=(0.0, 1.0), reload=HOT,
                              help="largest box, as a fraction of the frame's area")
    show_after: int = setting(1, range=(1, 1000),
                              help="hysteresis: show an object once seen in show_after of the last of_last inferences")
    of_last: int = setting(1, range=(1, 1000), help="hysteresis window (inferences)")


@dataclass
class RulesConfig:
    lines: List[str] = setting([], flag="--line", metavar="X1,Y1,X2,Y2[,NAME]", parse=parse_line,
                               help="a counting line in fractions of the frame (repeatable)")
    zones: List[dict] = setting([], parse=parse_zone,
                                help="zones: [{name: door, points: [[x, y], ...]}] in fractions of the frame")
    anchor: str = setting("bottom", choices=("bottom", "center", "top"),
                          help="the point of a box that crosses lines and enters zones")


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


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    clips: ClipsConfig = field(default_factory=ClipsConfig)
    log_level: str = setting("info", flag="--log-level", choices=("debug", "info", "warning", "error"),
                             reload=HOT, help="debug, info, warning or error")
    path: Optional[str] = field(default=None, metadata={"internal": True})


@dataclass(frozen=True)
class Setting:
    """One config key as the schema describes it."""

    key: str                      # "postprocess.threshold"
    type: Any                     # the annotation: int, Optional[float], ...
    default: Any
    flag: Optional[str]
    help: str
    metavar: Optional[str]
    choices: Optional[Tuple[str, ...]]
    range: Optional[Tuple[float, float]]
    reload: str
    flag_value: Any
    parse: Optional[Callable[[Any], Any]] = None

    @property
    def base_type(self) -> type:
        return _unwrap(self.type)

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.base_type) is list


def _unwrap(tp: Any) -> Any:
    """``int`` for ``Optional[int]``; ``List[str]`` stays itself."""
    if typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _settings(cls: type, prefix: str) -> Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _settings(hints[f.name], f"{prefix}{f.name}.")
            continue
        m = f.metadata
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        yield Setting(prefix + f.name, hints[f.name], default, m.get("flag"), m.get("help", ""),
                      m.get("metavar"), m.get("choices"), m.get("range"), m.get("reload", RESTART),
                      m.get("flag_value"), m.get("parse"))


SETTINGS: Dict[str, Setting] = {s.key: s for s in _settings(Config, "")}


def settings() -> Tuple[Setting, ...]:
    """Every config key, in config.yaml's order."""
    return tuple(SETTINGS.values())


def _type_name(tp: Any) -> str:
    base = _unwrap(tp)
    name = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[base]
    return name + (" or null" if base is not tp else "")


def _coerce_many(key: str, tp: Any, value: Any) -> Any:
    """A list (each item checked by the schema's ``parse``, or as a string) or a mapping of
    label to number."""
    s = SETTINGS[key]
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping of label to number, not {value!r:.80}")
        out = {}
        for label, v in value.items():
            out[str(label)] = _coerce(key, float, v)
        return out
    if not isinstance(value, list):
        raise ConfigError(f"config key '{key}' must be a list, not {value!r:.80}")
    try:
        items = [s.parse(v) if s.parse else _coerce(key, str, v) for v in value]
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from None
    return items


def _coerce(key: str, tp: Any, value: Any) -> Any:
    optional = type(None) in typing.get_args(tp)
    base = _unwrap(tp)
    if typing.get_origin(base) in (list, dict):
        return _coerce_many(key, base, value)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, not null")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:  # str: YAML turns `0` into an int; a camera index is still a valid source string
        ok = isinstance(value, (str, int)) and not isinstance(value, bool)
        value = str(value) if ok else value
    if not ok:
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, not {value!r}")
    s = SETTINGS[key]
    if s.choices and value not in s.choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(s.choices)}, not {value!r}")
    if s.range:
        lo, hi = s.range
        if not lo <= value <= hi:
            raise ConfigError(f"config key '{key}' must be between {lo} and {hi}, not {value!r}")
    return value


def _apply(obj: Any, data: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in fields:
            known = ", ".join(prefix + n for n in fields)
            raise ConfigError(f"unknown config key '{key}' (known keys here: {known})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{key}' must be a section of keys, not {value!r}")
            _apply(current, value, key + ".")
        else:
            setattr(obj, name, _coerce(key, hints[name], value))


def default_config_path() -> Optional[Path]:
    """config.yaml from $EDGECAM_CONFIG, else the current folder, else the checkout this runs from."""
    env = os.environ.get("EDGECAM_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "config.yaml", Path(__file__).resolve().parent.parent / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Optional[os.PathLike] = None, overrides: Optional[dict] = None) -> Config:
    """Load ``path`` (or the default config.yaml, or built-in defaults), then apply
    ``overrides``: a nested dict like ``{"model": {"name": "v1_ssd"}}``."""
    cfg = Config()
    explicit = path is not None
    p = Path(path) if explicit else default_config_path()
    if p is not None:
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {p} is not valid YAML{where}") from None
        except OSError as exc:
            raise ConfigError(f"config file {p} cannot be read ({exc.strerror})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must be a mapping of keys, not {type(data).__name__}")
        _apply(cfg, data)
        cfg.path = str(p)
    if overrides:
        _apply(cfg, overrides)
    return cfg


def override(key: str, value: Any) -> dict:
    """``{"model": {"name": value}}`` for ``override("model.name", value)``."""
    *sections, name = key.split(".")
    out: dict = {name: value}
    for section in reversed(sections):
        out = {section: out}
    return out


def to_dict(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("path", None)
    return d


def values(cfg: Config) -> Dict[str, Any]:
    """Every key's value: ``{"postprocess.threshold": 0.5, ...}``."""
    return {s.key: get_value(cfg, s.key) for s in settings()}


def get_value(cfg: Config, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def set_value(cfg: Config, key: str, value: Any) -> None:
    obj: Any = cfg
    *path, name = key.split(".")
    for part in path:
        obj = getattr(obj, part)
    setattr(obj, name, value)
