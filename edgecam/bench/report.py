"""The bench's tables, and what machine they were measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import List

import cv2

from edgecam.bench.runner import CAMERA_FPS
from edgecam.model.engine import interpreter_class
from edgecam.pipeline.clock import STAGES

RUNS = (("pipeline_outputs_on", "pipeline, video+JSON on"), ("pipeline_outputs_off", "pipeline, outputs off"),
        ("baseline", "baseline (classic loop)"))
LIVE_ROWS = (("pipeline", "edgecam"), ("baseline", "classic loop"), ("headless", "edgecam, headless"))


def _fmt(x, spec: str = ".1f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def _load(r: dict) -> str:
    x = r.get("other_load")
    return "-" if x is None else f"{x * 100:.0f}%"


def format_report(report: dict) -> str:
    lines: List[str] = []
    for src in report.get("sources", []):
        lines += _file_lines(src, report)
        if "live" in src:
            lines += _live_lines(src["live"])
    if report.get("sweep"):
        lines += _sweep_lines(report)
    lines.append("\n(other load: the share of the CPUs other programs used during that run; "
                 "figures from runs where it is above a few percent are low)")
    return "\n".join(lines).lstrip("\n")


def _file_lines(src: dict, report: dict) -> List[str]:
    c, n = src["ceiling"], report.get("threads", "N")
    file = f" ({src['file']})" if src.get("file") else ""
    lines = [f"\n{Path(src['source']).name}  model {report['model']}{file}  threads {report['threads']}  "
             f"(ceiling: invoke p50 {_fmt(c['invoke_ms']['p50'], '.2f')} ms, "
             f"p95 {_fmt(c['invoke_ms']['p95'], '.2f')} ms)",
             f"  {'variant':<26}{'FPS':>8}{'of ceiling':>12}{'x baseline':>12}{'first result':>14}"
             f"{'peak RSS':>11}{'other load':>12}",
             f"  {'ceiling (invoke only)':<26}{c['fps']:>8.1f}{'100%':>12}{'':>12}{'':>14}"
             f"{_fmt(c['peak_rss_mb']) + ' MB':>11}{_load(c):>12}"]
    if "fps_parallel" in c:
        lines.append(f"    (one interpreter x {n} threads {c['fps_one_interpreter']:.1f} FPS, "
                     f"{n} interpreters x 1 thread {c['fps_parallel']:.1f} FPS: the better is the ceiling)")
    for key, label in RUNS:
        r = src[key]
        lines.append(f"  {label:<26}{r['fps']:>8.1f}{r['of_ceiling'] * 100:>11.1f}%{r['vs_baseline']:>11.2f}x"
                     f"{_fmt(r['first_result_s'], '.2f') + ' s':>14}{_fmt(r['peak_rss_mb']) + ' MB':>11}{_load(r):>12}")
    rounds = src.get("rounds") or []
    if len(rounds) > 1:
        lines.append(f"  best of {len(rounds)} rounds; each round against its own ceiling and baseline "
                     "(on / off of ceiling, on x baseline):")
        lines.append("    " + "   ".join(f"{r['on_of_ceiling'] * 100:.1f}% / {r['off_of_ceiling'] * 100:.1f}%, "
                                          f"{r['on_vs_baseline']:.2f}x" for r in rounds))
    lines.append("  per-stage latency, ms p50/p95:")
    lines.append(f"  {'stage':<14}{'video+JSON on':>18}{'outputs off':>18}{'baseline':>18}")
    for st in STAGES:
        cells = []
        for key, _ in RUNS:
            s = src[key]["stages"].get(st, {})
            cells.append("-" if not s.get("n") else f"{s['p50']:.2f}/{s['p95']:.2f}")
        lines.append(f"  {st:<14}" + "".join(f"{x:>18}" for x in cells))
    lines += [f"  {label}: {src[key]['teach']}" for key, label in RUNS if src[key].get("teach")]
    if c.get("thread_scan"):
        lines.append("  interpreter threads (ceiling FPS): " +
                     ", ".join(f"{t}: {v['fps']:.1f}" for t, v in c["thread_scan"].items()))
    return lines


def _live_lines(lv: dict) -> List[str]:
    lines = [f"  live, loopback camera at {CAMERA_FPS:g} fps: age of the frame behind each result when drawn "
             f"(headless: when made), ms; invoke ms p50; CPU ms per inferred frame",
             f"  {'':<20}{'p50':>8}{'p95':>8}{'max':>8}{'budget':>8}{'results':>9}{'dropped':>9}{'growth':>8}"
             f"{'invoke':>8}{'CPU/frame':>11}{'other load':>12}  p95 by quarter"]
    for name, label in LIVE_ROWS:
        if name not in lv:
            continue
        v = lv[name]
        a = v["age_ms"]
        q = " ".join(_fmt(x["p95"], ".0f") for x in v["quarters_ms"])
        lines.append(f"  {label:<20}{_fmt(a['p50'], '.1f'):>8}{_fmt(a['p95'], '.1f'):>8}{_fmt(a['max'], '.1f'):>8}"
                     f"{_fmt(v['budget_ms'], '.1f'):>8}{v['results']:>9}{v['dropped']:>9}"
                     f"{_fmt(v['growth_p50_ms'], '+.1f'):>8}{_fmt(v.get('inference_ms_p50'), '.2f'):>8}"
                     f"{_fmt(v.get('cpu_ms_per_result'), '.2f'):>11}"
                     f"{_load(v):>12}  {q}")
    return lines


def _sweep_lines(report: dict) -> List[str]:
    lines = [f"\nmodels ({report['threads']} threads, {Path(report['sweep_source']).name}):",
             f"  {'model':<14}{'α':>6}{'px':>5}{'ρ':>7}{'mult-adds':>11}{'params':>9}{'pointwise':>10}"
             f"{'invoke ms':>11}{'ceiling FPS':>13}{'pipeline FPS':>14}{'top-1':>7}"]
    for r in report["sweep"]:
        lines.append(f"  {r['model']:<14}{_fmt(r['alpha'], 'g'):>6}{r['input_px']:>5}{_fmt(r['rho'], '.3g'):>7}"
                     f"{r['madds_m']:>10.0f}M{r['params_m']:>8.2f}M{r['pointwise_share'] * 100:>9.0f}%"
                     f"{_fmt(r['invoke_ms_p50'], '.2f'):>11}{r['ceiling_fps']:>13.1f}{r['pipeline_fps']:>14.1f}"
                     f"{_fmt(r.get('top1'), '.1f'):>7}")
    lines.append("  (top-1: published ImageNet top-1 %, from the papers' tables; sources in models/catalog.yaml)")
    return lines


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "opencv": cv2.__version__}
    try:
        info["runtime"] = interpreter_class("auto")[0]
    except Exception:  # noqa: BLE001 - informational only
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info
