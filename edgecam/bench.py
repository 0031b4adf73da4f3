"""`edgecam bench`: how fast edgecam really runs on this machine, and against what.

One run measures, each variant in a fresh subprocess (so peak memory and start-up time
are the variant's own):

  ceiling        interpreter only: invoke() on one fixed preprocessed frame, after warm-up,
                 with the same thread count, as many invokes as the pipeline has frames;
                 both as one interpreter with N threads and as N one-thread interpreters
                 side by side (the better is the ceiling); also a scan over 1..N threads
  pipeline       the real file-mode pipeline (edgecam.pipeline.run_file with a real Config),
                 with the annotated video and JSON Lines on, and with them off
  baseline       the plain one-thread loop of the well-known Raspberry Pi TFLite examples:
                 read, cvtColor, resize, set_tensor, invoke, get outputs, draw, write,
                 one after another
  live           run_live against a loopback camera serving the same footage at 30 fps
                 with each frame's index stamped in its pixels; the age of the frame behind
                 each result when that result is first drawn, and the frames that got none;
                 the same for the baseline loop reading the same camera

The three file-mode variants and the ceiling run in ``--repeat`` rounds, one after another,
so a slow spell of the machine falls on all of them; each figure is its best round.

Per-stage latency (decode, preprocess, inference, postprocess, overlay, output) p50/p95,
peak RSS (VmHWM) and the time from process start to the first result are reported for
each. `--models a,b,c` sweeps models: mult-adds and parameters (from the graph, via
edgecam.costs) beside latency and FPS, so the α² and ρ² scaling shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

STAGES = ("decode", "preprocess", "inference", "postprocess", "overlay", "output")
CAMERA_FPS = 30.0
LIVE_WARMUP_S = 1.0        # results in the first second after the first one are not counted


# ------------------------------------------------------------------------------------------
# small helpers (used by the parent and the children)

def pct(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summarize_ms(values_s: List[float]) -> Dict[str, Optional[float]]:
    ms = [x * 1000.0 for x in values_s]
    r = lambda x: None if x is None else round(x, 3)  # noqa: E731
    return {"p50": r(pct(ms, 50)), "p95": r(pct(ms, 95)), "n": len(ms)}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round((kb / 1024.0 if sys.platform != "darwin" else kb / 2**20), 1)


# ------------------------------------------------------------------------------------------
# the children: one variant each, results as JSON in spec["out"]

def _config(spec: dict, video: Optional[str] = None, jsonl: Optional[str] = None, uri: Optional[str] = None):
    from edgecam.config import load_config
    over = {"model": {"name": spec["model"], "threads": spec["threads"]},
            "source": {"uri": uri or spec["source"], "realtime": False},
            "output": {"video": video, "json": jsonl, "display": "none", "web": None, "overwrite": True},
            "overlay": {"enabled": True}}
    if spec.get("model_dir"):
        over["model"]["dir"] = spec["model_dir"]
    return load_config(spec.get("config"), over)


def _limit(source, frames: Optional[int]):
    """``source`` cut to its first ``frames`` frames (None: all of them)."""
    if not frames:
        return source
    from edgecam.sources import Source

    class Limited(Source):
        def __init__(self):
            for k in ("name", "live", "fps", "size", "still"):
                setattr(self, k, getattr(source, k))
            n = source.frame_count
            self.frame_count = min(n, frames) if n else frames
            self.left = frames

        def read(self):
            if self.left <= 0:
                return None
            self.left -= 1
            return source.read()

        def close(self):
            source.close()

    return Limited()


def _ceiling(spec: dict) -> dict:
    import cv2
    import numpy as np
    from edgecam.engine import Engine
    from edgecam.model import load_model
    from edgecam.preprocess import preprocess
    from edgecam.sources import open_source

    cfg = _config(spec)
    model = load_model(cfg)
    source = open_source(cfg.source, model.size)
    frame = source.read()
    source.close()
    tensor, _ = preprocess(frame.image, model.engine.input, model.resize, cv2.INTER_LINEAR)
    tensor = np.ascontiguousarray(tensor)

    def measure(engine, n: int, warm_s: float) -> dict:
        interp = engine.interpreter
        interp.set_tensor(engine._input_index, tensor)
        t_end, k = time.perf_counter() + warm_s, 0
        while k < 5 or time.perf_counter() < t_end:
            interp.invoke()
            k += 1
        # one block of as many invokes as the pipeline has frames: the same length of time
        # as the runs it is compared with, so a burst of other load weighs the same in both
        times = []
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            interp.invoke()
            times.append(time.perf_counter() - t0)
        fps = n / (time.perf_counter() - start)
        return {"fps": round(fps, 2), "invoke_ms": summarize_ms(times), "invokes": n}

    def measure_parallel(engines, n: int) -> float:
        """Invokes per second with one engine per thread, all at once (frame-parallel)."""
        import threading
        for e in engines:
            e.interpreter.set_tensor(e._input_index, tensor)
            for _ in range(5):
                e.interpreter.invoke()
        k = max(1, n // len(engines))
        workers = [threading.Thread(target=lambda e=e: [e.interpreter.invoke() for _ in range(k)])
                   for e in engines]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return k * len(engines) / (time.perf_counter() - start)

    n = spec["ceiling_invokes"]
    out = measure(model.engine, n, spec["warmup_s"])
    # the same threads as frame-parallel single-thread interpreters (what file mode runs by
    # default): the ceiling is the better of the two arrangements
    threads = spec["threads"]
    if threads > 1:
        engines = [Engine(model.engine.path, threads=1, runtime=cfg.model.runtime) for _ in range(threads)]
        out["fps_one_interpreter"] = out["fps"]
        out["fps_parallel"] = round(measure_parallel(engines, n), 2)
        out["fps"] = max(out["fps"], out["fps_parallel"])
        del engines
    out["first_result_at"] = None
    scan = {}
    if spec.get("scan_threads"):
        for t in range(1, (os.cpu_count() or 1) + 1):
            if t == spec["threads"]:   # measured above, at full length
                r = {"fps": out.get("fps_one_interpreter", out["fps"]), "invoke_ms": out["invoke_ms"]}
            else:
                eng = Engine(model.engine.path, threads=t, runtime=cfg.model.runtime)
                r = measure(eng, max(5, n // 3), min(0.5, spec["warmup_s"]))
            scan[str(t)] = {"fps": r["fps"], "invoke_ms_p50": r["invoke_ms"]["p50"]}
    out["thread_scan"] = scan
    out["input"] = [model.engine.input.width, model.engine.input.height]
    return out


class _ReadyHooks:
    def __init__(self):
        self.t_ready: Optional[float] = None

    def ready(self) -> None:
        self.t_ready = time.monotonic()

    def alive(self) -> None: ...
    def status(self, text: str) -> None: ...
    def stopping(self) -> None: ...


def _pipeline(spec: dict) -> dict:
    from edgecam.model import load_model
    from edgecam.pipeline import StopFlag, run_file
    from edgecam.sources import open_source

    tmp = Path(spec["tmp"])
    on = spec["outputs"]
    cfg = _config(spec, video=str(tmp / "pipeline.mp4") if on else None,
                  jsonl=str(tmp / "pipeline.jsonl") if on else None)
    hooks = _ReadyHooks()
    model = load_model(cfg)
    source = _limit(open_source(cfg.source, model.size), spec.get("frames"))
    stages: Dict[str, List[float]] = {}
    try:
        summary = run_file(cfg, source, model, StopFlag(), hooks=hooks, stages=stages)
    finally:
        source.close()
    out = {"fps": round(summary.fps, 2), "frames": summary.frames, "seconds": round(summary.seconds, 3),
           "first_result_at": hooks.t_ready,
           "stages": {k: summarize_ms(stages.get(k, [])) for k in STAGES}}
    if on:
        import cv2
        cap = cv2.VideoCapture(str(tmp / "pipeline.mp4"))
        out["video_frames"] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        with open(tmp / "pipeline.jsonl", encoding="utf-8") as f:
            out["json_lines"] = sum(1 for _ in f)
    return out


class _ClassicModel:
    """What the classic example loop needs from the model: interpreter, input size, labels."""

    def __init__(self, spec: dict, uri: Optional[str] = None):
        from edgecam.model import load_model
        cfg = _config(spec, uri=uri)
        self.model = load_model(cfg)          # same runtime and threads as the pipeline
        eng = self.model.engine
        self.interp = eng.interpreter
        d = self.interp.get_input_details()[0]
        self.index, self.h, self.w = d["index"], int(d["shape"][1]), int(d["shape"][2])
        self.dtype = d["dtype"]
        self.outs = [o["index"] for o in self.interp.get_output_details()]
        self.threshold = cfg.postprocess.threshold

    def step(self, frame, t: Dict[str, List[float]]):
        """One frame as the examples do it: convert, resize, invoke, read outputs, draw."""
        import cv2
        import numpy as np
        t1 = time.perf_counter()
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        resized = cv2.resize(rgb, (self.w, self.h))
        input_data = np.expand_dims(resized, axis=0)
        if self.dtype == np.float32:
            input_data = (np.float32(input_data) - 127.5) / 127.5
        elif self.dtype == np.int8:
            input_data = (input_data.astype(np.int16) - 128).astype(np.int8)
        t2 = time.perf_counter()
        self.interp.set_tensor(self.index, input_data)
        self.interp.invoke()
        m = self.model
        t3 = time.perf_counter()
        H, W = frame.shape[:2]
        font = cv2.FONT_HERSHEY_SIMPLEX
        if m.task == "detect":
            roles = m.roles
            boxes = self.interp.get_tensor(self.outs[roles["boxes"]])[0]
            classes = self.interp.get_tensor(self.outs[roles["classes"]])[0]
            scores = self.interp.get_tensor(self.outs[roles["scores"]])[0]
            t4 = time.perf_counter()
            for i in range(len(scores)):
                if self.threshold < scores[i] <= 1.0:
                    ymin, xmin = int(max(1, boxes[i][0] * H)), int(max(1, boxes[i][1] * W))
                    ymax, xmax = int(min(H, boxes[i][2] * H)), int(min(W, boxes[i][3] * W))
                    cv2.rectangle(frame, (xmin, ymin), (xmax, ymax), (10, 255, 0), 2)
                    label = "%s: %d%%" % (m.labels[int(classes[i])], int(scores[i] * 100))
                    (lw, lh), base = cv2.getTextSize(label, font, 0.7, 2)
                    ly = max(ymin, lh + 10)
                    cv2.rectangle(frame, (xmin, ly - lh - 10), (xmin + lw, ly + base - 10), (255, 255, 255), cv2.FILLED)
                    cv2.putText(frame, label, (xmin, ly - 7), font, 0.7, (0, 0, 0), 2)
        else:
            scores = self.interp.get_tensor(self.outs[0])[0]
            top = int(np.argmax(scores))
            t4 = time.perf_counter()
            cv2.putText(frame, "%s" % m.labels[top], (10, 30), font, 0.7, (0, 0, 0), 2)
        t5 = time.perf_counter()
        t["preprocess"].append(t2 - t1)
        t["inference"].append(t3 - t2)
        t["postprocess"].append(t4 - t3)
        t["overlay"].append(t5 - t4)
        return frame


def _baseline(spec: dict) -> dict:
    import cv2
    tmp = Path(spec["tmp"])
    classic = _ClassicModel(spec)
    cap = cv2.VideoCapture(spec["source"])
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = cv2.VideoWriter(str(tmp / "baseline.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    t: Dict[str, List[float]] = {k: [] for k in STAGES}
    limit, n, first = spec.get("frames") or 0, 0, None
    start = time.perf_counter()
    while not limit or n < limit:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        t["decode"].append(time.perf_counter() - t0)
        frame = classic.step(frame, t)
        if first is None:
            first = time.monotonic()
        t5 = time.perf_counter()
        out.write(frame)
        t["output"].append(time.perf_counter() - t5)
        n += 1
    out.release()
    cap.release()
    seconds = time.perf_counter() - start
    return {"fps": round(n / seconds, 2), "frames": n, "seconds": round(seconds, 3),
            "first_result_at": first, "stages": {k: summarize_ms(v) for k, v in t.items()}}


def _live(spec: dict) -> dict:
    """run_live on the loopback camera; (stamp, drawn time) of each result's first drawing."""
    from edgecam.loopback import read_stamp
    from edgecam.model import load_model
    from edgecam.pipeline import StopFlag, run_live
    from edgecam.sources import Source, open_source

    cfg = _config(spec, uri=spec["url"])
    model = load_model(cfg)
    inner = open_source(cfg.source, model.size)
    stamps: Dict[int, Optional[int]] = {}

    class Stamped(Source):
        def __init__(self):
            for k in ("name", "live", "fps", "size", "still", "frame_count"):
                setattr(self, k, getattr(inner, k))

        def read(self):
            frame = inner.read()
            if frame is not None:
                stamps[frame.index] = read_stamp(frame.image)
            return frame

        def reopen(self):
            inner.reopen()

        def close(self):
            inner.close()

    drawn: List[list] = []
    seen = set()

    class Outputs:
        def result(self, result) -> None: ...

        def frame(self, image, state) -> int:
            r = state.result
            if r is not None and r.frame not in seen:
                seen.add(r.frame)
                drawn.append([stamps.get(r.frame), time.monotonic(), r.inference_ms])
            return -1

        def idle(self, image, state) -> int:  # a new result redrawn on the frame on screen
            return self.frame(image, state) if image is not None else -1

        def request(self):
            return None

        def snapshot(self, image) -> None: ...
        def close(self) -> None: ...

    hooks = _ReadyHooks()
    stop = StopFlag()
    timer = threading.Timer(spec["live_seconds"], stop.set)
    timer.daemon = True
    timer.start()
    source = Stamped()
    try:
        summary = run_live(cfg, source, model, stop, Outputs(), hooks)
    finally:
        timer.cancel()
        source.close()
    return {"drawn": drawn, "received": [s for s in stamps.values() if s is not None],
            "results": summary.inferences, "shown": summary.frames,
            "first_result_at": hooks.t_ready}


def _live_baseline(spec: dict) -> dict:
    """The classic loop reading the same camera: every frame it reads, one after another."""
    import cv2
    from edgecam.loopback import read_stamp
    classic = _ClassicModel(spec, uri=spec["url"])
    cap = cv2.VideoCapture(spec["url"], cv2.CAP_FFMPEG)
    t: Dict[str, List[float]] = {k: [] for k in STAGES}
    drawn, received, first = [], [], None
    deadline = time.monotonic() + spec["live_seconds"]
    while time.monotonic() < deadline:
        ok, frame = cap.read()
        if not ok:
            break
        stamp = read_stamp(frame)
        received.append(stamp)
        t0 = time.perf_counter()
        classic.step(frame, t)
        now = time.monotonic()
        if first is None:
            first = now
        drawn.append([stamp, now, t["inference"][-1] * 1000.0 if t["inference"] else 0.0])
    cap.release()
    return {"drawn": drawn, "received": [s for s in received if s is not None],
            "results": len(drawn), "shown": len(drawn), "first_result_at": first}


VARIANTS = {"ceiling": _ceiling, "pipeline": _pipeline, "baseline": _baseline,
            "live": _live, "live_baseline": _live_baseline}


def child_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    result = VARIANTS[spec["variant"]](spec)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_s"] = round(time.process_time(), 3)
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------------------
# the parent

class BenchError(Exception):
    pass


def _cpu_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


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
        a = _cpu_ticks()
        time.sleep(1.0)
        b = _cpu_ticks()
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
    ticks0, own0 = _cpu_ticks(), _children_cpu()
    t_launch = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "edgecam.bench", "--child", str(spec_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    ticks1, own1 = _cpu_ticks(), _children_cpu()
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


def live_figures(raw: dict, camera, budget_ms: float) -> dict:
    """Ages of the frames behind the results (ms, at first drawing), drops, and drift."""
    rows = [(s, t, ms) for s, t, ms in raw["drawn"] if s is not None and camera.sent_time(s) is not None]
    if rows:
        t_first = rows[0][1]
        rows = [r for r in rows if r[1] - t_first >= LIVE_WARMUP_S] or rows
    ages = [(t - camera.sent_time(s)) * 1000.0 for s, t, _ in rows]
    stamps = sorted({s for s, _, _ in rows})
    span = stamps[-1] - stamps[0] + 1 if stamps else 0
    received = {s for s in raw["received"] if stamps and stamps[0] <= s <= stamps[-1]}
    quarters = []
    if rows:
        t0, t1 = rows[0][1], rows[-1][1]
        for q in range(4):
            lo, hi = t0 + (t1 - t0) * q / 4, t0 + (t1 - t0) * (q + 1) / 4
            a = [age for (s, t, _), age in zip(rows, ages) if lo <= t <= hi]
            quarters.append({"p50": _r(pct(a, 50)), "p95": _r(pct(a, 95))})
    growth = (quarters[-1]["p50"] - quarters[0]["p50"]) if len(quarters) == 4 and \
        quarters[0]["p50"] is not None and quarters[-1]["p50"] is not None else None
    return {"age_ms": {"p50": _r(pct(ages, 50)), "p95": _r(pct(ages, 95)), "max": _r(max(ages) if ages else None)},
            "results": len(rows), "camera_frames": span,
            "dropped": span - len(stamps),               # camera frames that got no result
            "not_received": span - len(received),        # ... of which never reached the reader
            "quarters_ms": quarters, "growth_p50_ms": _r(growth), "budget_ms": _r(budget_ms),
            "inference_ms_p50": _r(pct([ms for _, _, ms in rows], 50)),
            "peak_rss_mb": raw.get("peak_rss_mb"), "first_result_s": raw.get("first_result_s"),
            "other_load": raw.get("other_load")}


def _r(x, nd: int = 2):
    return None if x is None else round(float(x), nd)


PIPELINE_VARIANTS = (("pipeline_outputs_on", "pipeline", {"outputs": True}),
                     ("pipeline_outputs_off", "pipeline", {"outputs": False}),
                     ("baseline", "baseline", {}))


def bench_source(args, spec: dict, tmp: Path, log) -> dict:
    """``--repeat`` rounds, each of ceiling, pipeline (outputs on, off) and baseline one after
    another, so that a slow spell of the machine falls on every variant alike; each variant's
    figure is its best round (other load only ever slows a run down)."""
    report: Dict[str, object] = {"source": spec["source"]}
    frames = spec.get("frames")
    if not frames:
        from edgecam.sources import VideoFileSource
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
        from edgecam.loopback import LoopbackCamera
        budget = (ceiling["invoke_ms"]["p50"] or 0.0) + 1000.0 / CAMERA_FPS
        live = {}
        cam = LoopbackCamera(spec["source"], fps=CAMERA_FPS, stamp=True)
        url = cam.start()
        try:
            for name, variant in (("pipeline", "live"), ("baseline", "live_baseline")):
                log(f"live {name} ({args.live_seconds:g} s) ...")
                raw = run_child(variant, dict(spec, url=url, live_seconds=args.live_seconds), tmp,
                                timeout=args.live_seconds + 120)
                live[name] = live_figures(raw, cam, budget)
        finally:
            cam.stop()
        report["live"] = live
    return report


def sweep(args, spec: dict, tmp: Path, log) -> List[dict]:
    from edgecam import catalog, costs
    from edgecam.config import load_config
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        cfg = load_config(args.config, {"model": {"name": name, **({"dir": args.model_dir} if args.model_dir else {})}})
        spec_m = catalog.get(name) if not catalog.is_model_path(name) else None
        directory = catalog.model_dir(cfg.model.dir)
        path = catalog.model_path(spec_m, directory) if spec_m else Path(name)
        if spec_m:
            catalog.require_provisioned(spec_m, directory)
        cost = costs.analyze(path)
        log(f"sweep {name} ...")
        s = dict(spec, model=name)
        c = run_child("ceiling", dict(s, scan_threads=False), tmp)
        p = run_child("pipeline", dict(s, outputs=True), tmp)
        rows.append({"model": name, "alpha": spec_m.alpha if spec_m else None,
                     "input_px": c["input"][0], "rho": round(spec_m.rho, 3) if spec_m else None,
                     "task": spec_m.task if spec_m else None,
                     "madds_m": round(cost.madds / 1e6, 1), "params_m": round(cost.params / 1e6, 2),
                     "pointwise_share": round(cost.pointwise_share, 3),
                     "invoke_ms_p50": c["invoke_ms"]["p50"], "ceiling_fps": c["fps"],
                     "pipeline_fps": p["fps"], "peak_rss_mb": p["peak_rss_mb"]})
    return rows


def _fmt(x, spec: str = ".1f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def _load(r: dict) -> str:
    x = r.get("other_load")
    return "-" if x is None else f"{x * 100:.0f}%"


def spec_threads(report: dict):
    return report.get("threads", "N")


def format_report(report: dict) -> str:
    lines = []
    for src in report.get("sources", []):
        c = src["ceiling"]
        lines.append(f"\n{Path(src['source']).name}  model {report['model']}  threads {report['threads']}  "
                     f"(ceiling: invoke p50 {_fmt(c['invoke_ms']['p50'], '.2f')} ms, p95 {_fmt(c['invoke_ms']['p95'], '.2f')} ms)")
        hdr = (f"  {'variant':<26}{'FPS':>8}{'of ceiling':>12}{'x baseline':>12}{'first result':>14}"
               f"{'peak RSS':>11}{'other load':>12}")
        lines.append(hdr)
        lines.append(f"  {'ceiling (invoke only)':<26}{c['fps']:>8.1f}{'100%':>12}{'':>12}{'':>14}"
                     f"{_fmt(c['peak_rss_mb']) + ' MB':>11}{_load(c):>12}")
        if "fps_parallel" in c:
            lines.append(f"    (one interpreter x {spec_threads(report)} threads {c['fps_one_interpreter']:.1f} FPS, "
                         f"{spec_threads(report)} interpreters x 1 thread {c['fps_parallel']:.1f} FPS: the better is the ceiling)")
        for key, label in (("pipeline_outputs_on", "pipeline, video+JSON on"),
                           ("pipeline_outputs_off", "pipeline, outputs off"),
                           ("baseline", "baseline (classic loop)")):
            r = src[key]
            lines.append(f"  {label:<26}{r['fps']:>8.1f}{r['of_ceiling'] * 100:>11.1f}%{r['vs_baseline']:>11.2f}x"
                         f"{_fmt(r['first_result_s'], '.2f') + ' s':>14}{_fmt(r['peak_rss_mb']) + ' MB':>11}{_load(r):>12}")
        rounds = src.get("rounds") or []
        if len(rounds) > 1:
            lines.append(f"  best of {len(rounds)} rounds; each round against its own ceiling and baseline "
                         "(on / off of ceiling, on x baseline):")
            lines.append("    " + "   ".join(f"{r['on_of_ceiling'] * 100:.1f}% / {r['off_of_ceiling'] * 100:.1f}%, "
                                              f"{r['on_vs_baseline']:.2f}x" for r in rounds))
        lines.append(f"  per-stage latency, ms p50/p95:")
        lines.append(f"  {'stage':<14}{'video+JSON on':>18}{'outputs off':>18}{'baseline':>18}")
        for st in STAGES:
            cells = []
            for key in ("pipeline_outputs_on", "pipeline_outputs_off", "baseline"):
                s = src[key]["stages"].get(st, {})
                cells.append("-" if not s.get("n") else f"{s['p50']:.2f}/{s['p95']:.2f}")
            lines.append(f"  {st:<14}" + "".join(f"{x:>18}" for x in cells))
        if c.get("thread_scan"):
            lines.append("  interpreter threads (ceiling FPS): " +
                         ", ".join(f"{t}: {v['fps']:.1f}" for t, v in c["thread_scan"].items()))
        if "live" in src:
            lv = src["live"]
            lines.append(f"  live, loopback camera at {CAMERA_FPS:g} fps: age of the frame behind each result when drawn (ms)")
            lines.append(f"  {'':<14}{'p50':>8}{'p95':>8}{'max':>8}{'budget':>8}{'results':>9}{'dropped':>9}{'growth':>8}"
                         f"{'other load':>12}  p95 by quarter")
            for name in ("pipeline", "baseline"):
                v = lv[name]
                a = v["age_ms"]
                q = " ".join(_fmt(x["p95"], ".0f") for x in v["quarters_ms"])
                lines.append(f"  {name:<14}{_fmt(a['p50'], '.1f'):>8}{_fmt(a['p95'], '.1f'):>8}{_fmt(a['max'], '.1f'):>8}"
                             f"{_fmt(v['budget_ms'], '.1f'):>8}{v['results']:>9}{v['dropped']:>9}"
                             f"{_fmt(v['growth_p50_ms'], '+.1f'):>8}{_load(v):>12}  {q}")
    if report.get("sweep"):
        lines.append(f"\nmodels ({report['threads']} threads, {Path(report['sweep_source']).name}):")
        lines.append(f"  {'model':<14}{'α':>6}{'px':>5}{'ρ':>7}{'mult-adds':>11}{'params':>9}{'pointwise':>10}"
                     f"{'invoke ms':>11}{'ceiling FPS':>13}{'pipeline FPS':>14}")
        for r in report["sweep"]:
            lines.append(f"  {r['model']:<14}{_fmt(r['alpha'], 'g'):>6}{r['input_px']:>5}{_fmt(r['rho'], '.3g'):>7}"
                         f"{r['madds_m']:>10.0f}M{r['params_m']:>8.2f}M{r['pointwise_share'] * 100:>9.0f}%"
                         f"{_fmt(r['invoke_ms_p50'], '.2f'):>11}{r['ceiling_fps']:>13.1f}{r['pipeline_fps']:>14.1f}")
    lines.append("\n(other load: the share of the CPUs other programs used during that run; "
                 "figures from runs where it is above a few percent are low)")
    return "\n".join(lines).lstrip("\n")


def machine() -> dict:
    import cv2
    info = {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "opencv": cv2.__version__}
    try:
        from edgecam.engine import interpreter_class
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


def parser() -> argparse.ArgumentParser:
    from edgecam.cli import _Parser
    p = _Parser(prog="edgecam bench", description="Measure edgecam on this machine: interpreter ceiling, "
                "the file pipeline with outputs on and off, the classic one-thread loop, per-stage latency, "
                "peak memory, start-up time, and live latency against a loopback camera.")
    p.add_argument("--model", metavar="NAME|PATH", help="model to measure (default: the configured one)")
    p.add_argument("--source", metavar="FILE", required=True, help="video file(s), comma-separated")
    p.add_argument("--models", metavar="A,B,C", help="also sweep these models: mult-adds, params, latency, FPS")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--frames", type=int, metavar="N", help="frames per pipeline run (default: the whole file)")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the configured ones)")
    p.add_argument("--model-dir", metavar="DIR", help="where provisioned models live")
    p.add_argument("--config", metavar="PATH", help="config file")
    p.add_argument("--live-seconds", type=float, default=120.0, metavar="S",
                   help="length of each live run (default 120; 0 skips the live runs)")
    p.add_argument("--repeat", type=int, default=3, metavar="R",
                   help="rounds of ceiling, pipeline and baseline, one after another; each figure is "
                        "its best round, and every round is shown (default 3)")
    p.add_argument("--no-thread-scan", action="store_true", help="skip the ceiling scan over 1..N threads")
    p.add_argument("--quiet-wait", type=float, default=30.0, metavar="S",
                   help="before each run, wait up to S seconds for other programs' CPU load to settle "
                        "(default 30; 0: don't wait). Each run reports the load it shared the CPUs with")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1])
    from edgecam.config import load_config
    from edgecam.errors import EdgecamError, UsageError
    args = parser().parse_args(argv)
    cfg = load_config(args.config, {"model": {"dir": args.model_dir}} if args.model_dir else None)
    model = args.model or cfg.model.name
    threads = args.threads or cfg.model.threads
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    sources = [s.strip() for s in args.source.split(",") if s.strip()]
    for s in sources:
        if not Path(s).is_file():
            raise UsageError(f"--source {s}: no such video file (the benchmark needs a file)")
    from edgecam.model import load_model        # fail early, in one sentence, on a missing model
    load_model(load_config(args.config, {"model": {"name": model, **({"dir": args.model_dir} if args.model_dir else {})}}))

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
                report["sources"].append(bench_source(args, dict(spec, source=str(Path(s).resolve())), Path(td), log))
            if args.models:
                report["sweep_source"] = str(Path(sources[0]).resolve())
                report["sweep"] = sweep(args, dict(spec, source=report["sweep_source"]), Path(td), log)
    except BenchError as exc:
        raise EdgecamError(str(exc)) from None
    print(format_report(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
