"""`edgecam bench`'s command line: the arguments, the runs (runner.py), the report and the
sweep's chart; the children's entry (``--child``, child.py)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from edgecam import tradeoff
from edgecam.app import quiet_native_logs
from edgecam.bench.child import child_main
from edgecam.bench.report import format_report, machine
from edgecam.bench.runner import CAMERA_FPS, BenchError, _log, bench_source, sweep
from edgecam.config import load_config
from edgecam.errors import ArgParser, EdgecamError, UsageError
from edgecam.model.loader import load_model
from edgecam.provision import catalog


def parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="edgecam bench", description="Measure edgecam on this machine: interpreter ceiling, "
                "the file pipeline with outputs on and off, the classic one-thread loop, per-stage latency, "
                "peak memory, start-up time, and live latency against a loopback camera.")
    p.add_argument("--model", metavar="NAME|PATH", help="model to measure (default: the configured one)")
    p.add_argument("--source", metavar="FILE", required=True, help="video file(s), comma-separated")
    p.add_argument("--models", metavar="A,B,C", help="also sweep these models: mult-adds, params, latency, FPS")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--plot", metavar="FILE", help="draw the --models sweep as FILE.png or FILE.svg: latency "
                   "and FPS against mult-adds, and the published top-1 (needs matplotlib: edgecam[plot])")
    p.add_argument("--frames", type=int, metavar="N", help="frames per pipeline run (default: the whole file)")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the configured ones)")
    p.add_argument("--model-dir", metavar="DIR", help="where provisioned models live")
    p.add_argument("--config", metavar="PATH", help="config file")
    p.add_argument("--live-seconds", type=float, default=120.0, metavar="S",
                   help="live time of each live variant, shared by its rounds (default 120; 0 skips the live runs)")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="rounds of ceiling, pipeline and baseline, one after another; each figure is "
                        "its best round, and every round is shown (default 3)")
    p.add_argument("--int8", metavar="MODE[,MODE]", help="model.int8 for the runs; two modes (off,on) bench "
                   "the published file and its int8 rewrite one after the other, in one session "
                   "(default: the configured)")
    p.add_argument("--no-thread-scan", action="store_true", help="skip the ceiling scan over 1..N threads")
    p.add_argument("--quiet-wait", type=float, default=30.0, metavar="S",
                   help="before each run, wait up to S seconds for other programs' CPU load to settle "
                        "(default 30; 0: don't wait). Each run reports the load it shared the CPUs with")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_native_logs()
    if argv[:1] == ["--child"]:
        return child_main(argv[1])
    args = parser().parse_args(argv)
    cfg = load_config(args.config, {"model": {"dir": args.model_dir}} if args.model_dir else None)
    model = args.model or cfg.model.name
    threads = args.threads or cfg.model.threads
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    plot = tradeoff.check_plot_path(args.plot) if args.plot else None
    if plot and not args.models:
        raise UsageError("--plot draws the models swept: name them with --models A,B,C")
    sources = [s.strip() for s in args.source.split(",") if s.strip()]
    for s in sources:
        if not Path(s).is_file():
            raise UsageError(f"--source {s}: no such video file (the benchmark needs a file)")
    modes = _int8_modes(args.int8)
    files = {mode: load_model(                  # fail early, in one sentence, on a missing model
        load_config(args.config, {"model": {"name": model, **({"dir": args.model_dir} if args.model_dir else {}),
                                            **({"int8": mode} if mode else {})}})).engine.path.name for mode in modes}

    spec = {"model": model, "threads": threads, "model_dir": args.model_dir, "config": args.config,
            "frames": args.frames, "ceiling_invokes": 300,   # the sweep's; bench_source sets its own
            "quiet_wait": args.quiet_wait,
            "warmup_s": 1.0 if not args.frames or args.frames >= 100 else 0.2}
    log = _log
    report = {"model": model, "threads": threads, "machine": machine(), "frames": args.frames,
              "live_seconds": args.live_seconds, "camera_fps": CAMERA_FPS, "sources": []}
    try:
        with tempfile.TemporaryDirectory(prefix="edgecam-bench-") as td:
            for s in sources:
                for mode in modes:
                    if mode:
                        log(f"model.int8 {mode}: {files[mode]}")
                    src = bench_source(args, dict(spec, source=str(Path(s).resolve()), int8=mode), Path(td), log)
                    report["sources"].append(dict(src, int8=mode, file=files[mode]))
            if args.models:
                report["sweep_source"] = str(Path(sources[0]).resolve())
                report["sweep"] = sweep(args, dict(spec, source=report["sweep_source"]), Path(td), log)
    except BenchError as exc:
        raise EdgecamError(str(exc)) from None
    print(format_report(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if report.get("sweep"):
        _sweep_outputs(report, plot, catalog.model_dir(args.model_dir or cfg.model.dir))
    return 0


def _int8_modes(text: Optional[str]) -> List[Optional[str]]:
    """--int8 off,on -> ["off", "on"]; none given -> [None] (the configured model.int8)."""
    if not text:
        return [None]
    modes: List[Optional[str]] = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("auto", "on", "off")]
    if bad or not modes:
        raise UsageError(f"--int8 {text}: give auto, on or off, or two of them such as off,on")
    return modes


def _sweep_outputs(report: dict, plot: Optional[Path], model_dir: Path) -> None:
    """The sweep saved for the browser view's chart, and drawn to --plot."""
    saved = tradeoff.save_sweep(report, model_dir)
    if saved is None:
        _log(f"could not save the sweep in {tradeoff.state_dir()}: the browser view keeps the last one")
    if plot is not None:
        print(f"trade-off chart: {tradeoff.write_plot(report, plot)}", flush=True)
