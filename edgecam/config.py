"""Configuration: loaded once from config.yaml into typed objects, validated with messages
that name the bad key, then overridden by command-line flags."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from edgecam.errors import ConfigError

RESIZE_MODES = ("stretch", "letterbox", "crop")
DISPLAY_MODES = ("window", "fullscreen", "none")
RUNTIMES = ("auto", "ai_edge_litert", "tflite_runtime")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class ModelConfig:
    name: str = "v2_ssd"            # catalogue name or path to a .tflite file
    labels: Optional[str] = None    # label file; default: the catalogue's, or the model's metadata
    dir: Optional[str] = None       # where provisioned models live (default: see catalog.default_model_dir)
    mirror: Optional[str] = None    # local mirror folder to provision from (env EDGECAM_MODEL_MIRROR)
    runtime: str = "auto"           # auto | ai_edge_litert | tflite_runtime
    threads: int = 2                # interpreter threads (XNNPACK)
    workers: Optional[int] = None   # file mode: frames inferred at once, each interpreter with
                                    # threads/workers threads; null = threads (1 thread each)


@dataclass
class PreprocessConfig:
    rho: Optional[float] = None     # resolution multiplier: input = rho * base (224 or 300) px; null = the model's own
    resize: str = "stretch"         # stretch | letterbox | crop


@dataclass
class PostprocessConfig:
    threshold: float = 0.5          # minimum detection score
    top_k: int = 3                  # classes shown for a classifier


@dataclass
class SourceConfig:
    uri: str = "auto"               # auto | picamera2 | 0 | /dev/video0 | rtsp://... | csi://0 | file | folder
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    fourcc: Optional[str] = "MJPG"
    realtime: bool = False          # play a file source at its own frame rate, as if live
    reconnect_max_s: float = 10.0   # longest wait between reconnect attempts


@dataclass
class OutputConfig:
    video: Optional[str] = None     # annotated video file (.mp4/.avi)
    json: Optional[str] = None      # JSON Lines, one line per frame
    display: str = "window"         # window | fullscreen | none
    web: Optional[str] = None       # HOST:PORT for the browser view
    snapshot_dir: str = "."         # where `s` saves snapshots


@dataclass
class OverlayConfig:
    enabled: bool = True
    show_cost: bool = True          # model mult-adds and pointwise share


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    log_level: str = "info"
    path: Optional[str] = field(default=None, metadata={"internal": True})


CHOICES = {
    "model.runtime": RUNTIMES,
    "preprocess.resize": RESIZE_MODES,
    "output.display": DISPLAY_MODES,
    "log_level": LOG_LEVELS,
}
RANGES = {
    "model.threads": (1, 64),
    "model.workers": (1, 64),
    "preprocess.rho": (0.1, 2.0),
    "postprocess.threshold": (0.0, 1.0),
    "postprocess.top_k": (1, 1000),
    "source.width": (1, 16384),
    "source.height": (1, 16384),
    "source.fps": (0.1, 1000.0),
    "source.reconnect_max_s": (0.1, 3600.0),
}


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args else tp
    name = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[base]
    return name + (" or null" if args else "")


def _coerce(key: str, tp: Any, value: Any) -> Any:
    optional = type(None) in typing.get_args(tp)
    base = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
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
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(CHOICES[key])}, not {value!r}")
    if key in RANGES:
        lo, hi = RANGES[key]
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


def to_dict(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("path", None)
    return d
