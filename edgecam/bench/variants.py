"""The variants `edgecam bench` runs, each in a fresh child process (so that peak memory and
start-up time are the variant's own): the interpreter ceiling, the file-mode pipeline, and
live mode against the loopback camera, drawn (as with a display) and headless. The classic
loop's variants are in classic.py."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from edgecam.bench.loopback import read_stamp
from edgecam.bench.stats import summarize_ms
from edgecam.config import Config, load_config
from edgecam.errors import SourceError
from edgecam.model.loader import load_model
from edgecam.model.engine import Engine
from edgecam.model.preprocess import preprocess
from edgecam.pipeline import Hooks, StageTimes, StopFlag, run_file, run_live
from edgecam.pipeline.clock import STAGES
from edgecam.sinks import FrameInfo, Sink, Sinks
from edgecam.sinks.opening import open_outputs
from edgecam.sources import Frame, Source, open_source
from edgecam.sources.wrapper import Wrapper
from edgecam.teach.stage import open_teach


def config(spec: dict, video: Optional[str] = None, jsonl: Optional[str] = None,
           uri: Optional[str] = None) -> Config:
    over = {"model": {"name": spec["model"], "threads": spec["threads"]},
            "source": {"uri": uri or spec["source"], "realtime": False},
            "output": {"video": video, "json": jsonl, "display": "none", "web": None, "overwrite": True},
            "overlay": {"enabled": True}}
    if spec.get("model_dir"):
        over["model"]["dir"] = spec["model_dir"]
    if spec.get("int8"):                   # --int8 off,on: the published file, then its int8 rewrite
        over["model"]["int8"] = spec["int8"]
    return load_config(spec.get("config"), over)


class Limited(Wrapper):
    """A source cut to its first ``frames`` frames."""

    def __init__(self, inner: Source, frames: int):
        self.frames = self.left = frames
        super().__init__(inner)

    def sync(self) -> None:
        super().sync()
        self.frame_count = min(self.inner.frame_count, self.frames) if self.inner.frame_count else self.frames

    def read(self) -> Optional[Frame]:
        if self.left <= 0:
            return None
        self.left -= 1
        return self.inner.read()


class Stamped(Wrapper):
    """The loopback camera's frames, each one's stamped index noted as it arrives (it samples
    only the stamp's pixels)."""

    def __init__(self, inner: Source):
        super().__init__(inner)
        self.stamps: Dict[int, Optional[int]] = {}

    def read(self) -> Optional[Frame]:
        frame = self.inner.read()
        if frame is not None:
            self.stamps[frame.index] = read_stamp(frame.image)
        return frame


class ReadyHooks(Hooks):
    """The bench's supervisor: when the first result came."""

    def __init__(self):
        self.t_ready: Optional[float] = None

    def ready(self, status: str = "") -> None:
        self.t_ready = time.monotonic()


# -- the ceiling: the interpreter alone --------------------------------------------------------

def measure(engine: Engine, tensor: np.ndarray, n: int, warm_s: float) -> dict:
    """``n`` invokes on one interpreter after ``warm_s`` of warm-up: FPS and invoke latency."""
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


def measure_parallel(engines: List[Engine], tensor: np.ndarray, n: int) -> float:
    """Invokes per second with one engine per thread, all at once (frame-parallel)."""
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


def ceiling(spec: dict) -> dict:
    cfg = config(spec)
    model = load_model(cfg)
    source = open_source(cfg.source, model.size)
    frame = source.read()
    source.close()
    if frame is None:
        raise SourceError(f"{cfg.source.uri} has no frame to measure the interpreter on")
    tensor, _ = preprocess(frame.image, model.engine.input, model.resize, cv2.INTER_LINEAR)
    tensor = np.ascontiguousarray(tensor)
    n = spec["ceiling_invokes"]
    out = measure(model.engine, tensor, n, spec["warmup_s"])
    # the same threads as frame-parallel single-thread interpreters (what file mode runs by
    # default): the ceiling is the better of the two arrangements
    if spec["threads"] > 1:
        engines = [Engine(model.engine.path, threads=1, runtime=cfg.model.runtime) for _ in range(spec["threads"])]
        out["fps_one_interpreter"] = out["fps"]
        out["fps_parallel"] = round(measure_parallel(engines, tensor, n), 2)
        out["fps"] = max(out["fps"], out["fps_parallel"])
        del engines
    out["first_result_at"] = None
    out["thread_scan"] = thread_scan(spec, model, tensor, out) if spec.get("scan_threads") else {}
    out["input"] = [model.engine.input.width, model.engine.input.height]
    return out


def thread_scan(spec: dict, model, tensor: np.ndarray, full: dict) -> dict:
    """Ceiling FPS with 1..cores interpreter threads."""
    scan = {}
    n = spec["ceiling_invokes"]
    for t in range(1, (os.cpu_count() or 1) + 1):
        if t == spec["threads"]:   # measured above, at full length
            r = {"fps": full.get("fps_one_interpreter", full["fps"]), "invoke_ms": full["invoke_ms"]}
        else:
            eng = Engine(model.engine.path, threads=t, runtime=model.engine.runtime)
            r = measure(eng, tensor, max(5, n // 3), min(0.5, spec["warmup_s"]))
        scan[str(t)] = {"fps": r["fps"], "invoke_ms_p50": r["invoke_ms"]["p50"]}
    return scan


# -- the file-mode pipeline -------------------------------------------------------------------

def pipeline(spec: dict) -> dict:
    tmp = Path(spec["tmp"])
    on = spec["outputs"]
    video, jsonl = (tmp / "pipeline.mp4", tmp / "pipeline.jsonl") if on else (None, None)
    cfg = config(spec, video=str(video) if on else None, jsonl=str(jsonl) if on else None)
    hooks, clock = ReadyHooks(), StageTimes()
    model = load_model(cfg)
    teach = open_teach(cfg)                        # the config's taught sets (teach.set, teach.frame_set)
    source = open_source(cfg.source, model.size)
    if spec.get("frames"):
        source = Limited(source, spec["frames"])
    sinks = Sinks(open_outputs(cfg.output, source.fps or 30.0, source.size))
    try:
        summary = run_file(cfg, source, model, StopFlag(), sinks, hooks=hooks, clock=clock, teach=teach)
    finally:
        sinks.close()
        source.close()
    out: Dict[str, object] = {
        "fps": round(summary.fps, 2), "frames": summary.frames, "seconds": round(summary.seconds, 3),
        "first_result_at": hooks.t_ready, "stages": {k: summarize_ms(clock.times[k]) for k in STAGES}}
    if teach is not None:                          # what teaching cost, per embedding and per result
        out["teach"] = teach.line().strip()
    if video is not None and jsonl is not None:     # (outputs on)
        cap = cv2.VideoCapture(str(video))
        out["video_frames"] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        with open(jsonl, encoding="utf-8") as f:
            out["json_lines"] = sum(1 for _ in f)
    return out


# -- live mode on the loopback camera ------------------------------------------------------------

class FirstDrawn(Sink):
    """Notes each result the first time it is drawn: (frame, time, inference ms)."""

    def __init__(self, frames: bool = True):
        self.wants_frames = frames
        self.drawn: List[list] = []
        self._seen: set = set()

    def frame(self, image, info: FrameInfo) -> None:
        r = info.result
        if r is not None and r.frame not in self._seen:
            self._seen.add(r.frame)
            self.drawn.append([r.frame, time.monotonic(), r.inference_ms])

    def refresh(self, image, info: FrameInfo) -> None:   # a new result redrawn on the frame on screen
        if image is not None:
            self.frame(image, info)

    def result(self, result) -> None:                     # headless: nothing is drawn, a result is final
        if not self.wants_frames:
            self.drawn.append([result.frame, time.monotonic(), result.inference_ms])


def live(spec: dict) -> dict:
    """run_live on the loopback camera. Drawn (``spec["headless"]`` false): as with a display,
    each frame drawn; the time a result is first drawn. Headless: when each result is made."""
    cfg = config(spec, uri=spec["url"])
    model = load_model(cfg)
    source = Stamped(open_source(cfg.source, model.size))
    recorder = FirstDrawn(frames=not spec.get("headless"))
    hooks, stop = ReadyHooks(), StopFlag()
    timer = threading.Timer(spec["live_seconds"], stop.set)
    timer.daemon = True
    timer.start()
    cpu0 = time.process_time()
    try:
        summary = run_live(cfg, source, model, stop, Sinks([recorder]), hooks)
    finally:
        timer.cancel()
        source.close()
    cpu = time.process_time() - cpu0
    drawn = [[source.stamps.get(i), t, ms] for i, t, ms in recorder.drawn]
    return {"drawn": drawn, "received": [s for s in source.stamps.values() if s is not None],
            "results": summary.inferences, "shown": summary.frames, "first_result_at": hooks.t_ready,
            "cpu_run_s": cpu}
