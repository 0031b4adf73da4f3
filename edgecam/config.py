"""Configuration: loaded once from config.yaml into typed objects, validated with messages
that name the bad key, then overridden by command-line flags.

The dataclass fields below are the one schema: each field's metadata (see :func:`setting`)
carries its choices, its range, its command-line flag and help, and what a SIGHUP reload
does with it. The argument parser (cli.py), the validation here, the reload (service/reload.py)
and the test of README's table all read it from :func:`settings`."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import yaml

from edgecam.errors import ConfigError

# what a SIGHUP reload does with a changed key
HOT = "hot"            # applied at once
MODEL = "model"        # the model is reloaded in place (the old one keeps running if it fails)
RESTART = "restart"    # needs a restart: logged, not applied
UNUSED = "unused"      # used only when provisioning: nothing to apply


def setting(default: Any, *, flag: Optional[str] = None, help: str = "", metavar: Optional[str] = None,
            choices: Optional[Sequence[str]] = None, range: Optional[Tuple[float, float]] = None,
            reload: str = RESTART, flag_value: Any = None) -> Any:
    """A config field and its schema: ``flag`` is its command-line override (``flag_value``:
    the value a bare flag sets, for switches), ``choices`` and ``range`` bound its value,
    ``reload`` says what a SIGHUP does with a change."""
    meta = {"flag": flag, "help": help, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "range": range, "reload": reload, "flag_value": flag_value}
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


@dataclass
class OverlayConfig:
    enabled: bool = setting(True, flag="--no-overlay", flag_value=False, reload=HOT,
                            help="draw nothing on the frames")
    show_cost: bool = setting(True, reload=HOT, help="show the model's mult-adds and pointwise share")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
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

    @property
    def base_type(self) -> type:
        return next((a for a in typing.get_args(self.type) if a is not type(None)), self.type)


def _settings(cls: type, prefix: str) -> Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _settings(hints[f.name], f"{prefix}{f.name}.")
            continue
        m = f.metadata
        yield Setting(prefix + f.name, hints[f.name], f.default, m.get("flag"), m.get("help", ""),
                      m.get("metavar"), m.get("choices"), m.get("range"), m.get("reload", RESTART),
                      m.get("flag_value"))


SETTINGS: Dict[str, Setting] = {s.key: s for s in _settings(Config, "")}


def settings() -> Tuple[Setting, ...]:
    """Every config key, in config.yaml's order."""
    return tuple(SETTINGS.values())


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
