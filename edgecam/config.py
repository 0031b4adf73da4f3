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

from edgecam.bounds import path_text, name_problem, read_bounded, show
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
    video: Optional[str] = None     # annotated video file (.mp4/.mkv/.mov/.avi)
    json: Optional[str] = None      # JSON Lines, one line per frame
    overwrite: bool = False         # file mode: replace an existing video/JSON file
    segment_s: float = 600.0        # live: a new video file every this many seconds (0 = one per start)
    keep_mb: float = 2000.0         # live: delete the oldest video files beyond this total (0 = keep all)
    keep_hours: float = 0.0         # live: delete video files older than this (0 = keep all)
    json_max_mb: float = 100.0      # live: rotate the JSON file at this size (0 = never)
    json_keep: int = 5              # live: rotated JSON files kept (out.jsonl.1 ... .N)
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
    "output.segment_s": (0.0, 7 * 86400.0),
    "output.keep_mb": (0.0, 1e9),
    "output.keep_hours": (0.0, 24 * 3650.0),
    "output.json_max_mb": (0.0, 1e6),
    "output.json_keep": (1, 1000),
}
# keys that name files or folders (source.uri only when it is not a URL or a pipeline)
PATH_KEYS = {"model.name", "model.labels", "model.dir", "model.mirror", "source.uri",
             "output.video", "output.json", "output.snapshot_dir"}
MAX_STRING = 4096           # characters in any string value
MAX_FILE_BYTES = 256 * 1024  # config.yaml is 5 KB
MAX_DEPTH = 20              # nesting of sections and lists (config.yaml has 2)
MAX_NODES = 20000           # values in the document, with every alias expanded



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
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, not {show(value)}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(CHOICES[key])}, not {show(value)}")
    if key in RANGES:
        lo, hi = RANGES[key]
        if not lo <= value <= hi:  # NaN fails this too
            raise ConfigError(f"config key '{key}' must be between {lo} and {hi}, not {show(value)}")
    if isinstance(value, str):
        _check_string(key, value)
    return value


def _check_string(key: str, value: str) -> None:
    if len(value) > MAX_STRING:
        raise ConfigError(f"config key '{key}' is longer than {MAX_STRING} characters: {show(value)}")
    is_url = key == "source.uri" and ("://" in value or "!" in value)
    problem = name_problem(value) if key in PATH_KEYS and not is_url else (
        "it contains a NUL character" if "\x00" in value else None)
    if problem:
        raise ConfigError(f"config key '{key}' cannot name a file: {problem}: {show(value)}")
    if key == "output.web":
        from edgecam.web import parse_address
        try:
            parse_address(value)
        except Exception:
            raise ConfigError(f"bad --web address {show(value)} (config key 'output.web'): use PORT "
                              f"or HOST:PORT with a port 0-65535, e.g. 127.0.0.1:8080") from None
    if key == "source.fourcc" and len(value) != 4:
        raise ConfigError(f"config key 'source.fourcc' must be 4 characters (e.g. MJPG) or null, not {show(value)}")


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
    explicit = path is not None
    p = Path(path) if explicit else default_config_path()
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
    return cfg


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with nesting depth and alias expansion bounded while the node
    graph is composed, before a single Python object is built: a "billion laughs" file
    is refused after reading it once, in milliseconds."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict = {}      # id(node) -> values under it, aliases expanded

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(self.peek_event().anchor)
            if target is not None and id(target) not in self._sizes:
                raise _TooBig("refers to itself through an alias")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooBig(f"nests deeper than {MAX_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = self._sizes.get(id(node))
        if size is None:
            size = 1 + self._children_size(node)
            self._sizes[id(node)] = size
        if size > MAX_NODES:
            raise _TooBig(f"expands to more than {MAX_NODES} values (aliases expanded)")
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key, _ in node.value:  # a key given twice is a mistake, not "the last one wins"
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    raise _TooBig(f"gives key {show(key.value)} twice (line {key.start_mark.line + 1})")
                seen.add(key.value)
        return super().construct_mapping(node, deep)

    def _children_size(self, node) -> int:
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            return 0
        return sum(self._sizes[id(c)] for c in children)


class _TooBig(Exception):
    pass


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ ] and { } outside quotes and comments: PyYAML's scanner slows
    down quadratically with it, so a deep file is refused before the scanner sees it."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    quote = None
    comment = False
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def load_yaml(text: str, shown: str):
    """The YAML document ``text`` (a config file named ``shown``), bounded; ConfigError else."""
    if _flow_depth(text) > MAX_DEPTH:
        raise ConfigError(f"config file {shown} is refused: it nests deeper than {MAX_DEPTH} levels")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _TooBig as exc:
        raise ConfigError(f"config file {shown} is refused: it {exc}") from None  # bounds, twice-given keys
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {shown} is not valid YAML{where}") from None
    finally:
        loader.dispose()


def to_dict(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("path", None)
    return d
