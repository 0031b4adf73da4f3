"""Command line: `edgecam [flags]` runs the pipeline; `edgecam models list|fetch|info`
manages models; `edgecam bench` measures. Errors end in one sentence and an exit code:
2 for usage and config, 1 for runtime problems; never a traceback.

The run's flags are derived from the config schema (edgecam/config.py): each setting with a
``flag`` gets one, with its type, choices and help."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import cv2

from edgecam import __version__, app, bench
from edgecam.config import Setting, load_config, override, settings
from edgecam.errors import ArgParser, EdgecamError, UsageError
from edgecam.model import catalog, costs, fetch

log = logging.getLogger("edgecam")

# which group of `edgecam --help` a section's flags are listed in
GROUPS = {"model": "model", "preprocess": "model", "postprocess": "model",
          "source": "input and output", "output": "input and output", "overlay": "input and output",
          "track": "tracking and counting", "filters": "tracking and counting", "rules": "tracking and counting",
          "motion": "tracking and counting", "clips": "tracking and counting"}


def _add_flag(group, s: Setting) -> None:
    if s.flag_value is not None:                      # a switch: --realtime, --no-overlay
        group.add_argument(s.flag, dest=s.key, action="store_const", const=s.flag_value, default=None,
                           help=s.help)
        return
    if s.is_list:                                     # repeatable: --line A --line B
        group.add_argument(s.flag, dest=s.key, action="append", metavar=s.metavar, default=None, help=s.help)
        return
    kind = s.base_type
    group.add_argument(s.flag, dest=s.key, type=None if kind is str else kind, choices=s.choices,
                       metavar=None if s.choices else s.metavar, default=None, help=s.help)


def _run_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="edgecam", description="Real-time MobileNet classification and SSD detection "
                  "on camera, stream, video file or photos. Subcommands: `edgecam models list|fetch|info`, "
                  "`edgecam bench`.")
    p.add_argument("--version", action="version", version=f"edgecam {__version__}")
    p.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml, $EDGECAM_CONFIG)")
    groups = {name: p.add_argument_group(name) for name in dict.fromkeys(GROUPS.values())}
    for s in settings():
        if s.flag:
            _add_flag(groups.get(GROUPS.get(s.key.split(".")[0]), p), s)
    p.add_argument("--fetch", action="store_true", help="provision the model first if it is missing "
                   "(from model.mirror / $EDGECAM_MODEL_MIRROR when set, else its official URL)")
    return p


def _overrides(a: argparse.Namespace) -> dict:
    """The config keys the flags set: ``{"model": {"name": ...}, ...}``."""
    out: dict = {}
    for s in settings():
        value = getattr(a, s.key, None) if s.flag else None
        if value is not None:
            _merge(out, override(s.key, value))
    return out


def _merge(into: dict, more: dict) -> None:
    for k, v in more.items():
        if isinstance(v, dict):
            _merge(into.setdefault(k, {}), v)
        else:
            into[k] = v


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)


def quiet_native_logs() -> None:
    """Keep FFmpeg's and OpenCV's own chatter (e.g. "moov atom not found") off the terminal:
    edgecam reports a bad video or camera in one sentence of its own. FFmpeg reads its level
    when OpenCV's FFmpeg backend starts, at the first capture, so this runs before any."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def cmd_run(argv: List[str]) -> int:
    args = _run_parser().parse_args(argv)
    cfg = load_config(args.config, _overrides(args))
    setup_logging(cfg.log_level)
    if args.fetch:
        fetch.provision_configured(cfg)
    return app.run(cfg)


def _models_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="edgecam models", description="Manage models: list the catalogue, fetch (provision) "
                  "models, inspect a model's cost.")
    sub = p.add_subparsers(dest="what", required=True, parser_class=ArgParser)
    pl = sub.add_parser("list", help="the catalogue, and what is provisioned")
    pf = sub.add_parser("fetch", help="download (or copy from a mirror) and verify models")
    pf.add_argument("names", nargs="*", metavar="NAME", help="catalogue names (default: the configured model); 'all' for every one")
    pf.add_argument("--from", dest="mirror", metavar="DIR", help="provision from a local mirror folder instead of the network ($EDGECAM_MODEL_MIRROR)")
    pf.add_argument("--force", action="store_true", help="fetch again even when present")
    pi = sub.add_parser("info", help="parameters and mult-adds from the model's own graph (the cost lens)")
    pi.add_argument("name", metavar="NAME|PATH")
    pi.add_argument("--layers", action="store_true", help="one row per layer")
    pi.add_argument("--json", action="store_true", help="print JSON")
    for sp in (pl, pf, pi):
        sp.add_argument("--config", metavar="PATH")
        sp.add_argument("--model-dir", metavar="DIR")
    return p


def cmd_models(argv: List[str]) -> int:
    a = _models_parser().parse_args(argv)
    cfg = load_config(a.config, {"model": {"dir": a.model_dir}} if a.model_dir else None)
    setup_logging(cfg.log_level)
    directory = catalog.model_dir(cfg.model.dir)
    if a.what == "list":
        print(models_table(directory))
    elif a.what == "fetch":
        names = a.names or [cfg.model.name]
        if names == ["all"]:
            names = sorted(catalog.catalogue())
        specs = [catalog.get(n) for n in names]
        mirror = Path(a.mirror).expanduser() if a.mirror else (Path(cfg.model.mirror) if cfg.model.mirror else fetch.mirror_from_env())
        if mirror is not None and not mirror.is_dir():
            raise UsageError(f"model mirror {mirror} is not a folder")
        for spec in specs:
            print(f"{spec.name}: {fetch.provision(spec, directory, mirror=mirror)}")
    else:
        cost = costs.analyze(catalog.locate(a.name, None, cfg.model.dir).require().path)
        print(json.dumps(cost.to_dict(), indent=1) if a.json else costs.format_report(cost, layers=a.layers))
    return 0


def models_table(directory: Path) -> str:
    rows = [("name", "task", "α", "res", "ρ", "mult-adds", "params", "file", "here")]
    for name, m in sorted(catalog.catalogue().items(), key=lambda kv: (kv[1].task, kv[1].family, kv[1].alpha, kv[1].size, kv[0])):
        rows.append((name, m.task, f"{m.alpha:g}", f"{m.size}", f"{m.rho:.3g}",
                     f"{m.madds_m:g}M" if m.madds_m else "-", f"{m.params_m:g}M" if m.params_m else "-",
                     m.file, "yes" if catalog.is_provisioned(m, directory) else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"models folder: {directory}   (provision: edgecam models fetch NAME [--from MIRROR_DIR])")
    return "\n".join(lines)


def cmd_bench(argv: List[str]) -> int:
    return bench.main(argv)


COMMANDS = {"models": cmd_models, "bench": cmd_bench, "run": cmd_run}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command, argv = COMMANDS[argv[0]], argv[1:]
    else:
        command = cmd_run
    quiet_native_logs()
    try:
        return command(argv)
    except EdgecamError as err:
        print(f"edgecam: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("edgecam: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
