"""Command line: `edgecam [flags]` runs the pipeline; `edgecam models list|fetch|available|info`
manages models; `edgecam bench` measures; `edgecam eval` scores counts against a truth file;
`edgecam doctor` checks the machine; `edgecam teach SET` builds a taught set (edgecam/teach/);
`edgecam reload PID` is the service's ExecReload=. Errors
end in one sentence and an exit code: 2 for usage and config, 1 for runtime problems; never a
traceback.

The run's flags are derived from the config schema (edgecam/config.py): each setting with a
``flag`` gets one, with its type, choices and help."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from edgecam import __version__, doctor
from edgecam.bounds import escape
from edgecam.config import Setting, load_config, override, settings
from edgecam.errors import ArgParser, EdgecamError
from edgecam.logs import setup_logging
from edgecam.schema import switch_word
from edgecam.service.answer import request_reload
from edgecam.service.journal import priority_prefix

log = logging.getLogger("edgecam")

# Each command imports what it runs when it runs: `edgecam doctor` must start where numpy,
# OpenCV or the TFLite runtime do not import (that is what it diagnoses), so nothing here
# imports them at the top.
LAZY = "edgecam.app, edgecam.bench, edgecam.provision, edgecam.evaluate, edgecam.teach"

# which group of `edgecam --help` a section's flags are listed in
GROUPS = {"model": "model", "preprocess": "model", "postprocess": "model",
          "source": "input and output", "output": "input and output", "overlay": "input and output",
          "track": "tracking and counting", "filters": "tracking and counting", "rules": "tracking and counting",
          "motion": "tracking and counting", "clips": "tracking and counting",
          "mqtt": "MQTT and Home Assistant", "teach": "taught sets"}


def _add_flag(group, s: Setting) -> None:
    names = [n for n in (s.short, s.flag) if n]
    if s.flag_value is not None:                      # a switch: --realtime, --no-overlay, -y
        group.add_argument(*names, dest=s.key, action="store_const", const=s.flag_value, default=None,
                           help=s.help)
        return
    if s.is_list:                                     # repeatable: --line A --line B
        group.add_argument(s.flag, dest=s.key, action="append", metavar=s.metavar, default=None, help=s.help)
        return
    kind = s.base_type
    if kind is bool:                                  # on|off: --mqtt-discovery off
        group.add_argument(s.flag, dest=s.key, type=on_off, metavar=s.metavar, default=None, help=s.help)
        return
    group.add_argument(*names, dest=s.key, type=None if kind is str else kind, choices=s.choices,
                       metavar=None if s.choices else s.metavar, default=None, help=s.help)


def on_off(text: str) -> bool:
    value = switch_word(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"must be on or off, not {escape(text)[:40]!r}")
    return value


def _run_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="edgecam", description="Real-time MobileNet classification and SSD detection "
                  "on camera, stream, video file or photos. Subcommands: `edgecam models list|fetch|available|info`, "
                  "`edgecam bench`, `edgecam doctor`, `edgecam eval TRUTH` (counts scored against a ground truth), "
                  "`edgecam teach SET` (examples that relabel, suppress or classify the frame's state).")
    p.add_argument("--version", action="version", version=f"edgecam {__version__}")
    p.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml, $EDGECAM_CONFIG)")
    groups = {name: p.add_argument_group(name) for name in dict.fromkeys(GROUPS.values())}
    for s in settings():
        if s.flag:
            _add_flag(groups.get(GROUPS.get(s.key.split(".")[0], ""), p), s)
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


def cmd_run(argv: List[str]) -> int:
    args = _run_parser().parse_args(argv)
    cfg = load_config(args.config, _overrides(args))
    setup_logging(cfg.log_level)
    from edgecam import app                 # (see LAZY)
    return app.main(cfg, fetch=args.fetch)


def cmd_models(argv: List[str]) -> int:
    from edgecam.provision import commands      # (see LAZY)
    return commands.main(argv)


def cmd_bench(argv: List[str]) -> int:
    from edgecam import bench               # (see LAZY)
    return bench.main(argv)


def cmd_eval(argv: List[str]) -> int:
    from edgecam import evaluate            # (see LAZY)
    return evaluate.main(argv, file_run)


def file_run(argv: List[str]):
    """A file run's flags: its config, and whether to provision the model first."""
    args = _run_parser().parse_args(argv)
    cfg = load_config(args.config, _overrides(args))
    setup_logging(cfg.log_level)
    return cfg, args.fetch


def cmd_teach(argv: List[str]) -> int:
    from edgecam.teach import command       # (see LAZY)
    return command.main(argv)


def cmd_doctor(argv: List[str]) -> int:
    setup_logging("warning")
    return doctor.main(argv)


def cmd_reload(argv: List[str]) -> int:
    p = ArgParser(prog="edgecam reload", description="Reload a running edgecam's config (the service's "
                  "ExecReload=): send it SIGHUP, wait for its answer and print it; exit 0 when the new "
                  "config is in force, 1 when it was refused.")
    p.add_argument("pid", type=int, metavar="PID", help="the running edgecam ($MAINPID)")
    p.add_argument("--timeout", type=float, default=110.0, metavar="S", help="seconds to wait (default 110)")
    a = p.parse_args(argv)
    return request_reload(a.pid, a.timeout)


COMMANDS = {"models": cmd_models, "bench": cmd_bench, "run": cmd_run, "doctor": cmd_doctor,
            "reload": cmd_reload, "eval": cmd_eval, "teach": cmd_teach}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command, argv = COMMANDS[argv[0]], argv[1:]
    else:
        command = cmd_run
    try:
        return command(argv)
    except EdgecamError as err:
        print(f"{priority_prefix(3)}edgecam: error: {escape(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{priority_prefix(5)}edgecam: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
