"""Command line: `edgecam [flags]` runs the pipeline; `edgecam models list|fetch|available|info`
manages models; `edgecam bench` measures; `edgecam doctor` checks the machine; `edgecam reload PID`
is the service's ExecReload=. Errors end in one sentence and an exit code:
2 for usage and config, 1 for runtime problems; never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

from edgecam import __version__
from edgecam.errors import EdgecamError, UsageError

log = logging.getLogger("edgecam")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2, like every other usage error
        import re
        from edgecam.bounds import SHOWN_CHARS, show
        # argparse quotes the bad value whole: show at most SHOWN_CHARS of it
        message = re.sub(r"'([^']{%d,})'" % SHOWN_CHARS, lambda m: show(m.group(1)), message)
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _run_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="edgecam", description="Real-time MobileNet classification and SSD detection "
                "on camera, stream, video file or photos. Subcommands: `edgecam models list|fetch|available|info`, "
                "`edgecam bench`, `edgecam doctor`.")
    p.add_argument("--version", action="version", version=f"edgecam {__version__}")
    p.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml, $EDGECAM_CONFIG)")
    g = p.add_argument_group("model")
    g.add_argument("--model", metavar="NAME|PATH", help="catalogue name (v2_ssd, v1_ssd, v1, v2, v3, v1_0.25_128, ...) or a .tflite file")
    g.add_argument("--labels", metavar="PATH", help="label file (default: the catalogue's, or the model's metadata)")
    g.add_argument("--model-dir", metavar="DIR", help="where provisioned models live")
    g.add_argument("--runtime", choices=["auto", "ai_edge_litert", "tflite_runtime"])
    g.add_argument("--threads", type=int, metavar="N", help="interpreter threads")
    g.add_argument("--rho", type=float, metavar="FLOAT", help="resolution multiplier ρ: input = ρ x 224 (classifiers) or ρ x 300 (SSD)")
    g.add_argument("--resize", choices=["stretch", "letterbox", "crop"], help="how a frame becomes the model input")
    g.add_argument("--threshold", type=float, metavar="FLOAT", help="minimum detection score")
    g.add_argument("--top-k", type=int, metavar="N", help="classes shown for a classifier")
    g = p.add_argument_group("input and output")
    g.add_argument("--source", metavar="PATH|URL|INDEX", help="auto, picamera2, 0, /dev/video0, rtsp://..., http://..., csi://0, a video file, an image or a folder")
    g.add_argument("--realtime", action="store_true", default=None, help="play a video file at its own frame rate, as if live")
    g.add_argument("--output", metavar="FILE", help="write the annotated video (.mp4, .avi)")
    g.add_argument("--json", metavar="FILE", help="write one JSON line per frame ('-' for stdout)")
    g.add_argument("-y", "--overwrite", action="store_true", default=None,
                   help="file mode: replace an existing --output/--json file (refused otherwise)")
    g.add_argument("--display", choices=["window", "fullscreen", "none"])
    g.add_argument("--web", metavar="HOST:PORT", help="serve the browser view (e.g. 127.0.0.1:8080; 0.0.0.0:8080 for the network)")
    g.add_argument("--no-overlay", action="store_true", default=None, help="draw nothing on the frames")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--fetch", action="store_true", help="provision the model first if it is missing "
                   "(from model.mirror / $EDGECAM_MODEL_MIRROR when set, else its official URL)")
    return p


def _overrides(a: argparse.Namespace) -> dict:
    o: dict = {}

    def put(section: Optional[str], key: str, value) -> None:
        if value is not None:
            (o.setdefault(section, {}) if section else o)[key] = value

    put("model", "name", a.model)
    put("model", "labels", a.labels)
    put("model", "dir", a.model_dir)
    put("model", "runtime", a.runtime)
    put("model", "threads", a.threads)
    put("preprocess", "rho", a.rho)
    put("preprocess", "resize", a.resize)
    put("postprocess", "threshold", a.threshold)
    put("postprocess", "top_k", a.top_k)
    put("source", "uri", a.source)
    put("source", "realtime", a.realtime)
    put("output", "video", a.output)
    put("output", "json", a.json)
    put("output", "overwrite", a.overwrite)
    put("output", "display", a.display)
    put("output", "web", a.web)
    put("overlay", "enabled", False if a.no_overlay else None)
    put(None, "log_level", a.log_level)
    return o


class EscapingFormatter(logging.Formatter):
    """Control characters in a message are escaped: a value (a model name with a newline)
    cannot forge a log line."""

    def format(self, record: logging.LogRecord) -> str:
        from edgecam.bounds import escape
        return escape(super().format(record))


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))


def cmd_run(argv: List[str]) -> int:
    from edgecam.app import run
    from edgecam.config import load_config
    args = _run_parser().parse_args(argv)
    cfg = load_config(args.config, _overrides(args))
    setup_logging(cfg.log_level)
    if args.fetch:
        from edgecam.fetch import provision_configured
        provision_configured(cfg)
    return run(cfg)


def cmd_models(argv: List[str]) -> int:
    from edgecam import catalog
    from edgecam.config import load_config
    p = _Parser(prog="edgecam models", description="Manage models: list the catalogue, fetch (provision) models, inspect a model's cost.")
    sub = p.add_subparsers(dest="what", required=True, parser_class=_Parser)
    pl = sub.add_parser("list", help="the catalogue, and what is provisioned")
    pf = sub.add_parser("fetch", help="download (or copy from a mirror) and verify models")
    pf.add_argument("names", nargs="*", metavar="NAME", help="catalogue names (default: the configured model); 'all' for every one")
    pf.add_argument("--from", dest="mirror", metavar="DIR", help="provision from a local mirror folder instead of the network ($EDGECAM_MODEL_MIRROR)")
    pf.add_argument("--force", action="store_true", help="fetch again even when present")
    pa = sub.add_parser("available", help="the catalogue models a mirror folder (or, without one, the network) can provision")
    pa.add_argument("--from", dest="mirror", metavar="DIR", help="a local mirror folder ($EDGECAM_MODEL_MIRROR)")
    pi = sub.add_parser("info", help="parameters and mult-adds from the model's own graph (the cost lens)")
    pi.add_argument("name", metavar="NAME|PATH")
    pi.add_argument("--layers", action="store_true", help="one row per layer")
    pi.add_argument("--json", action="store_true", help="print JSON")
    for sp in (pl, pf, pa, pi):
        sp.add_argument("--config", metavar="PATH")
        sp.add_argument("--model-dir", metavar="DIR")
    a = p.parse_args(argv)
    cfg = load_config(a.config, {"model": {"dir": a.model_dir}} if a.model_dir else None)
    setup_logging(cfg.log_level)
    directory = catalog.model_dir(cfg.model.dir)
    if a.what == "list":
        print(models_table(directory))
        return 0
    if a.what in ("fetch", "available"):
        from edgecam import fetch
        mirror = Path(a.mirror).expanduser() if a.mirror else (Path(cfg.model.mirror) if cfg.model.mirror else fetch.mirror_from_env())
        if mirror is not None and not mirror.is_dir():
            raise UsageError(f"model mirror {mirror} is not a folder")
        if a.what == "available":
            return _print_available(mirror)
        if a.names:
            names = sorted(catalog.catalogue()) if a.names == ["all"] else a.names
            specs = [catalog.get(n) for n in names]
        else:                                      # the configured model, at its configured ρ
            specs = [catalog.resolve(cfg.model.name, cfg.preprocess.rho)]
        for spec in specs:
            path = fetch.provision(spec, directory, mirror=mirror)
            print(f"{spec.name}: {path}")
        return 0
    from edgecam import costs
    target = a.name
    if not catalog.is_model_path(target):
        spec = catalog.get(target)
        catalog.require_provisioned(spec, directory)
        target = str(catalog.model_path(spec, directory))
    cost = costs.analyze(Path(target))
    print(json.dumps(cost.to_dict(), indent=1) if a.json else costs.format_report(cost, layers=a.layers))
    return 0


def _print_available(mirror: Optional[Path]) -> int:
    from edgecam import catalog, fetch
    specs = [m for m in catalog.catalogue().values() if m.alias_of is None]
    names, note = fetch.available(specs, mirror)
    where = f"the model mirror {mirror}" if mirror else "the network"
    if names:
        print(f"{where} can provision: {', '.join(sorted(names))}")
    else:
        print(f"{where} can provision none of the catalogue's models" + (f" ({note})" if note else ""))
    if note and names:
        print(f"  not the others: {note}")
    return 0 if names else 1


def _figures(spec, directory: Path):
    """Mult-adds and parameters measured from a provisioned model's graph (for catalogue
    entries without figures), marked as measured."""
    from edgecam import catalog, costs
    try:
        cost = costs.analyze(catalog.model_path(spec, directory))
    except Exception:  # an unreadable model is `models info`'s to explain, not the table's
        return "not measured", "here"
    return f"{cost.madds / 1e6:.0f}M (graph)", f"{cost.params / 1e6:.2f}M (graph)"


def models_table(directory: Path) -> str:
    from edgecam import catalog
    rows = [("name", "task", "α", "res", "ρ", "mult-adds", "params", "file", "here")]
    for name, m in sorted(catalog.catalogue().items(), key=lambda kv: (kv[1].task, kv[1].family, kv[1].alpha, kv[1].size, kv[0])):
        here = catalog.is_provisioned(m, directory)
        madds, params = _figures(m, directory) if here and m.madds_m is None else \
            (f"{m.madds_m:g}M" if m.madds_m else "not measured", f"{m.params_m:g}M" if m.params_m else "here")
        rows.append((name, m.task, f"{m.alpha:g}", f"{m.size}", f"{m.rho:.3g}", madds, params,
                     m.file, "yes" if here else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"models folder: {directory}   (provision: edgecam models fetch NAME [--from MIRROR_DIR])")
    return "\n".join(lines)


def cmd_bench(argv: List[str]) -> int:
    from edgecam.bench import main as bench_main
    return bench_main(argv)


def cmd_doctor(argv: List[str]) -> int:
    from edgecam.doctor import main as doctor_main
    return doctor_main(argv)


def cmd_reload(argv: List[str]) -> int:
    p = _Parser(prog="edgecam reload", description="Reload a running edgecam's config (the service's "
                "ExecReload=): send it SIGHUP, wait for its answer and print it; exit 0 when the new "
                "config is in force, 1 when it was refused.")
    p.add_argument("pid", type=int, metavar="PID", help="the running edgecam ($MAINPID)")
    p.add_argument("--timeout", type=float, default=110.0, metavar="S", help="seconds to wait (default 110)")
    a = p.parse_args(argv)
    from edgecam.reload import request_reload
    return request_reload(a.pid, a.timeout)


COMMANDS = {"models": cmd_models, "bench": cmd_bench, "run": cmd_run, "doctor": cmd_doctor, "reload": cmd_reload}


def _prefix(priority: int) -> str:
    """The syslog priority prefix when stderr is the journal (see systemd.priority_prefix)."""
    from edgecam.systemd import priority_prefix
    return priority_prefix(priority)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command, argv = COMMANDS[argv[0]], argv[1:]
    else:
        command = cmd_run
    try:
        return command(argv)
    except EdgecamError as err:
        from edgecam.bounds import escape
        print(f"{_prefix(3)}edgecam: error: {escape(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{_prefix(5)}edgecam: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
