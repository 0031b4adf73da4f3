"""Configuration: loaded once from config.yaml into typed objects, validated with messages
that name the bad key, then overridden by command-line flags.

The dataclass fields below are the one schema: each field's metadata (see :func:`setting`)
carries its choices, its range, its command-line flag and help, and what a SIGHUP reload
does with it. The argument parser (cli.py), the validation here, the reload (service/reload.py)
and the test of README's table all read it from :func:`settings`."""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from edgecam.bounds import name_problem, path_text, read_bounded, show
from edgecam.errors import ConfigError, UsageError
from edgecam.yamlfile import MAX_DEPTH, MAX_NODES, load_yaml  # noqa: F401

from edgecam.mqtt.address import check_url
from edgecam.mqtt.settings import MqttConfig
from edgecam.store.settings import HistoryConfig
from edgecam.teach.settings import TeachConfig
from edgecam.schema import HOT, MODEL, RESTART, UNUSED, coerce_many, setting, unwrap  # noqa: F401
from edgecam.track.settings import (ClipsConfig, FiltersConfig, MotionConfig, RulesConfig, TrackConfig,
                                    check_together)


@dataclass
class ModelConfig:
    name: str = setting("v2_ssd", flag="--model", metavar="NAME|PATH", reload=MODEL, path=True, live=True,
                        alias="model",
                        help="catalogue name (v2_ssd, v1_ssd, v1, v2, v3, v1_0.25_128, ...) or a .tflite file")
    labels: Optional[str] = setting(None, flag="--labels", metavar="PATH", reload=MODEL, path=True,
                                    help="label file (default: the catalogue's, or the model's metadata)")
    dir: Optional[str] = setting(None, flag="--model-dir", metavar="DIR", reload=MODEL, path=True,
                                 help="where provisioned models live")
    mirror: Optional[str] = setting(None, reload=UNUSED, path=True,
                                    help="local mirror folder to provision from (env EDGECAM_MODEL_MIRROR)")
    compare: Optional[str] = setting(None, flag="--compare", metavar="A,B[,C,D]", path=False,
                                     help="run 2-4 models of one task on the same frames, shown side by "
                                          "side with each one's latency and result (e.g. v1_0.25_128,v2,v3)")
    runtime: str = setting("auto", flag="--runtime", choices=("auto", "ai_edge_litert", "tflite_runtime"),
                           reload=MODEL, help="TFLite runtime")
    int8: str = setting("auto", flag="--int8", choices=("auto", "on", "off"), reload=MODEL,
                        help="run a uint8 model as its int8 rewrite, cached beside it (XNNPACK's faster "
                             "kernels): auto where measured equal, on wherever it converts, off as published")
    threads: int = setting(2, flag="--threads", metavar="N", range=(1, 64), reload=MODEL,
                           help="interpreter threads")
    workers: Optional[int] = setting(None, range=(1, 64), reload=UNUSED,
                                     help="file mode: frames inferred at once (null: as many as threads); "
                                          "live mode has no use for it")
    pin_threads: bool = setting(True, reload=RESTART,
                                help="live mode: the inference thread and each interpreter thread on a core of "
                                     "its own, while other programs leave the cores quiet (Linux)")


@dataclass
class PreprocessConfig:
    rho: Optional[float] = setting(None, flag="--rho", metavar="FLOAT", range=(0.1, 2.0), reload=MODEL,
                                   help="resolution multiplier ρ: input = ρ x 224 (classifiers) or ρ x 300 (SSD)")
    resize: str = setting("stretch", flag="--resize", choices=("stretch", "letterbox", "crop"), reload=MODEL,
                          help="how a frame becomes the model input")


@dataclass
class PostprocessConfig:
    threshold: float = setting(0.5, flag="--threshold", metavar="FLOAT", range=(0.0, 1.0), reload=HOT,
                               live=True, step=0.01, alias="threshold",
                               help="minimum detection score")
    top_k: int = setting(3, flag="--top-k", metavar="N", range=(1, 1000), reload=HOT, live=True, step=1,
                         alias="top_k",
                         help="classes shown for a classifier")
    classes: List[str] = setting([], flag="--classes", metavar="LABEL", reload=HOT, live=True, alias="classes",
                                 help="only these labels in the results (repeatable; empty: all)")


@dataclass
class SourceConfig:
    uri: str = setting("auto", flag="--source", metavar="PATH|URL|INDEX", path=True,
                       help="auto, picamera2, 0, /dev/video0, rtsp://..., http://..., csi://0, "
                            "a video file, an image or a folder")
    width: int = setting(1280, range=(1, 16384), help="capture width")
    height: int = setting(720, range=(1, 16384), help="capture height")
    fps: float = setting(30.0, range=(0.1, 1000.0), help="capture rate")
    fourcc: Optional[str] = setting("MJPG", help="webcam pixel format")
    realtime: bool = setting(False, flag="--realtime", flag_value=True,
                             help="play a video file at its own frame rate, as if live")
    loop: bool = setting(False, flag="--loop", flag_value=True,
                         help="play a video file as a camera: at its own rate, from the start again at its end")
    flip: str = setting("none", flag="--flip", choices=("none", "h", "v", "both"),
                        help="mirror the picture: h (left-right), v (top-bottom) or both, before --rotate")
    rotate: str = setting("0", flag="--rotate", choices=("0", "90", "180", "270"),
                          help="turn the picture clockwise by 0, 90, 180 or 270 degrees")
    reconnect_max_s: float = setting(10.0, range=(0.1, 3600.0),
                                     help="longest wait between reconnect attempts (seconds)")


@dataclass
class OutputConfig:
    video: Optional[str] = setting(None, flag="--output", metavar="FILE", path=True,
                                   help="write the annotated video (.mp4, .mkv, .mov, .avi); for photos, the "
                                        "annotated photo (.jpg, .png, ...) or a folder of them (DIR/)")
    json: Optional[str] = setting(None, flag="--json", metavar="FILE", path=True,
                                  help="write one JSON line per frame ('-' for stdout)")
    overwrite: bool = setting(False, flag="--overwrite", short="-y", flag_value=True,
                              help="file mode: replace an existing --output/--json file (refused otherwise)")
    segment_s: float = setting(600.0, range=(0.0, 7 * 86400.0),
                               help="live: a new video file every this many seconds (0 = one per start)")
    keep_mb: float = setting(2000.0, range=(0.0, 1e9),
                             help="live: delete the oldest video files beyond this total (0 = keep all)")
    keep_hours: float = setting(0.0, range=(0.0, 24 * 3650.0),
                                help="live: delete video files older than this (0 = keep all)")
    json_max_mb: float = setting(100.0, range=(0.0, 1e6), help="live: rotate the JSON file at this size (0 = never)")
    json_keep: int = setting(5, range=(1, 1000), help="live: rotated JSON files kept (out.jsonl.1 ... .N)")
    display: str = setting("window", flag="--display", choices=("window", "fullscreen", "none"),
                           help="window, fullscreen (kiosk) or none")
    web: Optional[str] = setting(None, flag="--web", metavar="HOST:PORT",
                                 help="serve the browser view (e.g. 127.0.0.1:8080; 0.0.0.0:8080 for the network)")
    web_token: Optional[str] = setting(None, flag="--web-token", metavar="TOKEN",
                                       help="the browser view's token (8-256 of A-Z a-z 0-9 . _ ~ -); default: "
                                            "generated once into the state folder")
    web_auth: str = setting("token", flag="--web-auth", choices=("token", "none"),
                            help="token: changes (and, off loopback, viewing) need the token; none: no login")
    web_public_view: bool = setting(False, flag="--web-public-view", flag_value=True,
                                    help="off loopback: anyone may watch (changes still need the token)")
    web_hosts: List[str] = setting([], flag="--web-host", metavar="NAME",
                                   help="more names the browser view answers to (Host header; repeatable)")
    web_max_connections: int = setting(64, range=(4, 4096), help="browser view: open connections at most")
    web_max_viewers: int = setting(10, range=(0, 1000), help="browser view: MJPEG viewers at most")
    metrics: Optional[str] = setting(None, flag="--metrics", metavar="HOST:PORT",
                                     help="serve Prometheus metrics alone (GET /metrics), without the browser view")
    snapshot_dir: str = setting(".", reload=HOT, path=True, help="where the `s` key saves snapshots")
    events: Optional[str] = setting(None, flag="--events", metavar="FILE", path=True,
                                    help="write one JSON line per tracking event ('-' for stdout)")
    clips: Optional[str] = setting(None, flag="--clips", metavar="DIR", path=True,
                                   help="live mode: record a clip around each event into DIR (see clips.*)")


@dataclass
class OverlayConfig:
    enabled: bool = setting(True, flag="--no-overlay", flag_value=False, reload=HOT, live=True, alias="overlay",
                            help="draw nothing on the frames")
    show_cost: bool = setting(True, reload=HOT, live=True, alias="show_cost",
                              help="show the model's mult-adds and pointwise share")


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
    history: HistoryConfig = field(default_factory=HistoryConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    teach: TeachConfig = field(default_factory=TeachConfig)
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
    short: Optional[str]
    path: bool
    parse: Optional[Callable[[Any], Any]] = None
    live: bool = False            # a live control (edgecam/pipeline/tuning.py)
    step: Optional[float] = None  # ... its slider's step
    alias: Optional[str] = None   # ... its short name: the set topic, the status key

    @property
    def base_type(self) -> type:
        return unwrap(self.type)

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.base_type) is list


def _settings(cls: type, prefix: str) -> Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _settings(hints[f.name], f"{prefix}{f.name}.")
            continue
        m = f.metadata
        default = f.default_factory() if callable(f.default_factory) else f.default   # (MISSING is not callable)
        yield Setting(prefix + f.name, hints[f.name], default, m.get("flag"), m.get("help", ""),
                      m.get("metavar"), m.get("choices"), m.get("range"), m.get("reload", RESTART),
                      m.get("flag_value"), m.get("short"), m.get("path", False), m.get("parse"),
                      m.get("live", False), m.get("step"), m.get("alias"))


SETTINGS: Dict[str, Setting] = {s.key: s for s in _settings(Config, "")}
# views of the schema: keys that name files or folders (source.uri only when it is not a
# URL or a pipeline), keys with a set of choices, keys with a range
PATH_KEYS = {s.key for s in SETTINGS.values() if s.path}
CHOICES = {s.key: s.choices for s in SETTINGS.values() if s.choices}
RANGES = {s.key: s.range for s in SETTINGS.values() if s.range}
# the live controls: the keys declared live=True, and the pause, which is no config key (a run
# starts unpaused). edgecam/pipeline/tuning.py holds their values; the web routes, MQTT's set
# topics, Home Assistant's entities and the browser's page derive their lists from CONTROLS.
PAUSED = "paused"
PAUSE = Setting(PAUSED, bool, False, None, "stop inferring and freeze the picture", None, None, None, HOT, None,
                None, False, live=True, alias=PAUSED)
CONTROLS: Tuple[Setting, ...] = tuple(s for s in SETTINGS.values() if s.live) + (PAUSE,)
CONTROL_NAMES = {**{c.key: c for c in CONTROLS}, **{c.alias: c for c in CONTROLS if c.alias}, "pause": PAUSE}
MAX_STRING = 4096           # characters in any string value
MAX_FILE_BYTES = 256 * 1024  # config.yaml is 5 KB


def settings() -> Tuple[Setting, ...]:
    """Every config key, in config.yaml's order."""
    return tuple(SETTINGS.values())


def _type_name(tp: Any) -> str:
    base = unwrap(tp)
    name = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[base]
    return name + (" or null" if base is not tp else "")


def _coerce(key: str, tp: Any, value: Any) -> Any:
    optional = type(None) in typing.get_args(tp)
    base = unwrap(tp)
    if typing.get_origin(base) in (list, dict):
        return coerce_many(key, base, value, SETTINGS[key].parse, _coerce)
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
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, not {show(value)}")
    s = SETTINGS[key]
    if s.choices and value not in s.choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(s.choices)}, not {show(value)}")
    if s.range:
        lo, hi = s.range
        if not lo <= value <= hi:  # NaN fails this too
            raise ConfigError(f"config key '{key}' must be between {lo} and {hi}, not {show(value)}")
    if isinstance(value, str):
        _check_string(key, value)
    return value


def check_value(key: str, value: Any) -> Any:
    """``value`` checked and coerced for config key ``key`` as config.yaml's would be
    (ConfigError with one sentence): for settings changed while running (browser, MQTT)."""
    if key not in SETTINGS:
        raise ConfigError(f"unknown config key {show(key)}")
    return _coerce(key, SETTINGS[key].type, value)


ADDRESS_KEYS = {"output.web": "--web", "output.metrics": "--metrics"}
TOKEN_CHARS = r"[A-Za-z0-9._~-]{8,256}"


def _check_string(key: str, value: str) -> None:
    check_url(key, value)            # mqtt.url: checked first, so that no message shows its password
    if len(value) > MAX_STRING:
        raise ConfigError(f"config key '{key}' is longer than {MAX_STRING} characters: {show(value)}")
    is_url = key == "source.uri" and ("://" in value or "!" in value)
    problem = name_problem(value) if key in PATH_KEYS and not is_url else (
        "it contains a NUL character" if "\x00" in value else None)
    if problem:
        raise ConfigError(f"config key '{key}' cannot name a file: {problem}: {show(value)}")
    if key in ADDRESS_KEYS:
        try:
            parse_address(value)
        except Exception:
            raise ConfigError(f"bad {ADDRESS_KEYS[key]} address {show(value)} (config key '{key}'): use PORT "
                              f"or HOST:PORT with a port 0-65535, e.g. 127.0.0.1:8080") from None
    if key == "output.web_token" and not re.fullmatch(TOKEN_CHARS, value):
        raise ConfigError(f"config key 'output.web_token' must be 8 to 256 of A-Z a-z 0-9 . _ ~ -, "
                          f"not {show(value)}")
    if key == "source.fourcc" and len(value) != 4:
        raise ConfigError(f"config key 'source.fourcc' must be 4 characters (e.g. MJPG) or null, not {show(value)}")


def parse_address(address: str) -> Tuple[str, int]:
    """"8080", ":8080" -> 127.0.0.1:8080; "0.0.0.0:8080" listens on every interface."""
    text = str(address).strip()
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"bad --web address {show(address)}: use PORT or HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def _apply(obj: Any, data: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    for name, value in data.items():
        key = f"{prefix}{name}" if isinstance(name, str) else f"{prefix}{show(name)}"
        if name not in fields:
            known = ", ".join(prefix + n for n in fields)
            raise ConfigError(f"unknown config key {show(key)} (known keys here: {known})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{key}' must be a section of keys, not {show(value)}")
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
    ``overrides``: a nested dict like ``{"model": {"name": "v1_ssd"}}``.

    Any failure, whatever its cause (a bad value, a file that is not YAML, a YAML bomb, a
    device, an encoding error, memory), is a ConfigError with one sentence: reload relies on it."""
    try:
        return _load(path, overrides)
    except ConfigError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        where = f"config file {path_text(path)}" if path is not None else "the configuration"
        raise ConfigError(f"{where} cannot be loaded ({type(exc).__name__}: {path_text(exc)})") from None


def _load(path: Optional[os.PathLike], overrides: Optional[dict]) -> Config:
    cfg = Config()
    p = Path(path) if path is not None else default_config_path()
    if p is not None:
        shown = path_text(p)
        if name_problem(str(p)) is None and not p.exists():
            raise ConfigError(f"config file {shown} does not exist")
        raw = read_bounded(p, "config file", MAX_FILE_BYTES, ConfigError)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {shown} is not UTF-8 text (byte {exc.start})") from None
        data = load_yaml(text, shown) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {shown} must be a mapping of keys, not {type(data).__name__}")
        _apply(cfg, data)
        cfg.path = str(p)
    if overrides:
        _apply(cfg, overrides)
    check_together(cfg)
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
