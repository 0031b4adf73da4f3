"""The bench's parent process: runs each variant in a child, waits for a quiet machine first,
and notes how much of the CPUs other programs took meanwhile."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from edgecam.bench.loopback import LoopbackCamera
from edgecam.bench.stats import live_figures
from edgecam.config import load_config
from edgecam.costlens import costs
from edgecam.provision import catalog
from edgecam.model.cores import cpu_ticks
from edgecam.sources import VideoFileSource

CAMERA_FPS = 30.0


class BenchError(Exception):
    pass


def _children_cpu() -> float:
    """CPU seconds of this process (the loopback camera lives here) and its finished children."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_CHILDREN),
                                                   resource.getrusage(resource.RUSAGE_SELF)))


def _log(msg: str) -> None:
    print(f"edgecam bench: {msg}", file=sys.stderr, flush=True)


def wait_for_quiet(max_wait: float, log, threshold: float = 0.10) -> Optional[float]:
    """Wait (up to ``max_wait`` s) until the machine's CPUs are < ``threshold`` busy over 1 s,
    so another program's load does not end up in the figures. Returns the last busy share."""
    deadline = time.monotonic() + max_wait
    said = False
    while True:
        a = cpu_ticks()
        time.sleep(1.0)
        b = cpu_ticks()
        if a is None or b is None or b[1] == a[1]:
            return None
        busy = (b[0] - a[0]) / (b[1] - a[1])
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 3)
        if not said:
            log(f"the CPUs are {busy * 100:.0f}% busy with other work: waiting for them to settle")
            said = True


def run_child(variant: str, spec: dict, tmp: Path, timeout: float = 900) -> dict:
    """One variant in a fresh Python process; its figures plus the start-to-first-result time."""
    spec = dict(spec, variant=variant, tmp=str(tmp), out=str(tmp / f"{variant}-result.json"))
    spec_path = tmp / f"{variant}-spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if spec.get("quiet_wait"):
        wait_for_quiet(spec["quiet_wait"], _log)
    ticks0, own0 = cpu_ticks(), _children_cpu()
    t_launch = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "edgecam.bench", "--child", str(spec_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    ticks1, own1 = cpu_ticks(), _children_cpu()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise BenchError(f"the {variant} run failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    result = json.loads(Path(spec["out"]).read_text())
    at = result.pop("first_result_at", None)
    result["first_result_s"] = round(at - t_launch, 3) if at is not None else None
    if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
        # CPU time other programs took meanwhile, as a share of the machine (ours: the child's)
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = (ticks1[0] - ticks0[0]) / hz
        total = (ticks1[1] - ticks0[1]) / hz
        result["other_load"] = round(max(0.0, busy - (own1 - own0)) / total, 3)
    return result


Variants = Tuple[Tuple[str, str, Dict[str, bool]], ...]     # (name, child, its options)

PIPELINE_VARIANTS: Variants = (("pipeline_outputs_on", "pipeline", {"outputs": True}),
                               ("pipeline_outputs_off", "pipeline", {"outputs": False}),
                               ("baseline", "baseline", {}))


def bench_source(args, spec: dict, tmp: Path, log) -> dict:
    """``--repeat`` rounds, each of ceiling, pipeline (outputs on, off) and baseline one after
    another, so that a slow spell of the machine falls on every variant alike; each variant's
    figure is its best round (other load only ever slows a run down)."""
    report: Dict[str, object] = {"source": spec["source"]}
    frames = spec.get("frames")
    if not frames:
        source = VideoFileSource(Path(spec["source"]))   # a file it cannot read: one sentence
        frames = source.frame_count or 300
        source.close()
    spec = dict(spec, ceiling_invokes=max(5, frames))   # the ceiling runs as long as a pipeline run
    rounds: List[dict] = []
    n_rounds = max(1, args.repeat)
    for k in range(n_rounds):
        tag = f"round {k + 1}/{n_rounds}: " if n_rounds > 1 else ""
        log(f"{tag}ceiling ({spec['threads']} threads) ...")
        rnd = {"ceiling": run_child("ceiling", dict(spec, scan_threads=k == 0 and not args.no_thread_scan), tmp)}
        for name, variant, extra in PIPELINE_VARIANTS:
            log(f"{tag}{name} ...")
            rnd[name] = run_child(variant, dict(spec, **extra), tmp)
        rounds.append(rnd)
    best = {name: max((r[name] for r in rounds), key=lambda x: x["fps"])
            for name in ("ceiling", *(v[0] for v in PIPELINE_VARIANTS))}
    ceiling = best["ceiling"]
    if not ceiling.get("thread_scan"):
        ceiling["thread_scan"] = rounds[0]["ceiling"].get("thread_scan", {})
    report["ceiling"] = ceiling
    runs = {name: best[name] for name, _, _ in PIPELINE_VARIANTS}
    report.update(runs)
    base_fps = runs["baseline"]["fps"]
    for name in runs:
        r = runs[name]
        r["of_ceiling"] = round(r["fps"] / ceiling["fps"], 4) if ceiling["fps"] else None
        r["vs_baseline"] = round(r["fps"] / base_fps, 4) if base_fps else None
    # each round against its own ceiling and baseline: how much the figures move run to run
    report["rounds"] = [{
        "ceiling_fps": r["ceiling"]["fps"],
        **{f"{name}_fps": r[name]["fps"] for name, _, _ in PIPELINE_VARIANTS},
        "on_of_ceiling": round(r["pipeline_outputs_on"]["fps"] / r["ceiling"]["fps"], 4),
        "off_of_ceiling": round(r["pipeline_outputs_off"]["fps"] / r["ceiling"]["fps"], 4),
        "on_vs_baseline": round(r["pipeline_outputs_on"]["fps"] / r["baseline"]["fps"], 4),
        "other_load_max": max((r[x].get("other_load") or 0.0) for x in r)} for r in rounds]
    if args.live_seconds > 0:
        report["live"] = bench_live(args, spec, tmp, log, ceiling)
    return report


LIVE_VARIANTS: Variants = (("pipeline", "live", {}), ("baseline", "live_baseline", {}),
                           ("headless", "live", {"headless": True}))


def bench_live(args, spec: dict, tmp: Path, log, ceiling: dict) -> dict:
    """Live runs on the loopback camera: edgecam drawing every frame (as with a display), the
    classic loop, and edgecam headless (no display, video or browser view), in ``--repeat``
    interleaved rounds that share the live time, so that a slow spell of the machine falls on
    every variant alike; each variant's ages are pooled over its rounds."""
    budget = (ceiling["invoke_ms"]["p50"] or 0.0) + 1000.0 / CAMERA_FPS
    n_rounds = max(1, args.repeat)
    seconds = max(2.0, args.live_seconds / n_rounds)
    raws: Dict[str, List[dict]] = {name: [] for name, _, _ in LIVE_VARIANTS}
    cam = LoopbackCamera(spec["source"], fps=CAMERA_FPS, stamp=True)
    url = cam.start()
    try:
        for k in range(n_rounds):
            for name, variant, extra in LIVE_VARIANTS:
                log(f"live round {k + 1}/{n_rounds}: {name} ({seconds:g} s) ...")
                raws[name].append(run_child(variant, dict(spec, url=url, live_seconds=seconds, **extra), tmp,
                                            timeout=seconds + 120))
        return {name: live_figures(raws[name], cam, budget) for name in raws}
    finally:
        cam.stop()


def sweep(args, spec: dict, tmp: Path, log) -> List[dict]:
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        where = catalog.locate(name, None, args.model_dir or load_config(args.config).model.dir).require()
        cost = costs.analyze(where.path)
        log(f"sweep {name} ...")
        s = dict(spec, model=name)
        c = run_child("ceiling", dict(s, scan_threads=False), tmp)
        p = run_child("pipeline", dict(s, outputs=True), tmp)
        m = where.spec
        rows.append({"model": name, "alpha": m.alpha if m else None,
                     "input_px": c["input"][0], "rho": round(m.rho, 3) if m else None,
                     "task": m.task if m else None,
                     "madds_m": round(cost.madds / 1e6, 1), "params_m": round(cost.params / 1e6, 2),
                     "pointwise_share": round(cost.pointwise_share, 3),
                     "invoke_ms_p50": c["invoke_ms"]["p50"], "ceiling_fps": c["fps"],
                     "pipeline_fps": p["fps"], "peak_rss_mb": p["peak_rss_mb"],
                     "top1": m.top1 if m else None})
    return rows
