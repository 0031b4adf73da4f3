"""The pipeline: source -> preprocess -> inference -> postprocess -> overlay -> sinks.

All of edgecam's threads and queues live here.

File mode (every frame, in order): a reader thread decodes ahead into a bounded queue, the
calling thread runs the model, and a writer thread draws and encodes behind it, so decode,
inference and encode overlap without dropping or reordering a frame.

Live mode (newest frame only): a capture thread puts each camera frame into two leaky
slots of one (the Coral camera example's leaky queue): the inference thread always takes
the newest frame, and the output loop shows every camera frame with the latest results
drawn on it (as rpicam-apps does), so the picture stays smooth when inference is slower
than the camera and results never lag behind the scene.
"""

from __future__ import annotations

import collections
import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from edgecam import overlay
from edgecam.config import Config
from edgecam.errors import EdgecamError, SourceError
from edgecam.health import Heartbeat
from edgecam.model import Model, Result
from edgecam.progress import Progress
from edgecam.sandbox import write_refusal
from edgecam.sinks import VideoSink, open_live_video, open_outputs
from edgecam.sources import Frame, Source

log = logging.getLogger("edgecam.pipeline")
END = object()
WAKE = object()   # LatestSlot.get(): no new item, but something else changed (a new result)


class Hooks:
    """What the pipeline tells its supervisor (systemd: see systemd.py). All no-ops here.
    ``heartbeat``: where the worker threads check in (health.py); systemd.Notifier's watchdog
    pings only while none of them is stuck."""

    @property
    def heartbeat(self) -> Heartbeat:
        if "_heartbeat" not in self.__dict__:
            self.__dict__["_heartbeat"] = Heartbeat()
        return self.__dict__["_heartbeat"]

    def ready(self, status: str = "") -> None: ...
    def alive(self) -> None: ...          # called from the inference loop after every result
    def status(self, text: str) -> None: ...
    def stopping(self) -> None: ...


def heartbeat_of(hooks) -> Heartbeat:
    """Where the workers check in: the hooks' own, or a private one (hooks that are not Hooks)."""
    beat = getattr(hooks, "heartbeat", None)
    return beat if isinstance(beat, Heartbeat) else Heartbeat()


class LatestSlot:
    """A leaky queue of one: put() replaces what is there (counting it as dropped)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._has = False
        self._woken = False
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._has and item is not END:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a waiting get() return WAKE now, unless an item is already there."""
        with self._cond:
            if not self._has:
                self._woken = True
                self._cond.notify_all()

    def get(self, timeout: float):
        """The newest item; WAKE after wake(); None after ``timeout`` seconds with nothing new."""
        with self._cond:
            if not self._has and not self._cond.wait_for(lambda: self._has or self._woken, timeout):
                return None
            if not self._has:
                self._woken = False
                return WAKE
            self._woken = False
            item, self._item, self._has = self._item, None, False
            if item is END:  # END stays, so that every reader sees it
                self._item, self._has = END, True
            return item


class RateMeter:
    """Events per second over the last ``window`` seconds, as of now: it falls to 0 within
    ``window`` seconds of the events stopping (an outage reads 0, not the last rate).
    ``settle(hold)`` at a (re)connect starts afresh and ignores the next ``hold`` seconds:
    a stream's first frames (one read while opening, others buffered meanwhile) arrive back to
    back and would read as a multiple of the camera's rate."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: collections.deque = collections.deque()
        self._hold_until = float("-inf")

    def settle(self, hold: float = 1.0, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        self.times.clear()
        self._hold_until = now + hold

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self._hold_until:
            return
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()

    def rate_at(self, now: float) -> float:
        times = [t for t in list(self.times) if now - t <= self.window]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(now - times[0], times[-1] - times[0], 1e-6)

    @property
    def rate(self) -> float:
        return self.rate_at(time.monotonic())


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    inference_ms_total: float = 0.0
    inferences: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    model: str = ""
    interrupted: bool = False
    first_result_s: Optional[float] = None

    def add(self, result: Result) -> None:
        self.inferences += 1
        self.inference_ms_total += result.inference_ms
        for label in result.labels():
            self.counts[label] = self.counts.get(label, 0) + 1

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_inference_ms(self) -> float:
        return self.inference_ms_total / self.inferences if self.inferences else 0.0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
                "mean_inference_ms": round(self.mean_inference_ms, 2), "counts": self.counts,
                "model": self.model, "interrupted": self.interrupted}

    def format(self) -> str:
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])
        counts = ", ".join(f"{k}: {v}" for k, v in top[:12]) or "nothing found"
        more = f" (+{len(top) - 12} more labels)" if len(top) > 12 else ""
        state = " (interrupted)" if self.interrupted else ""
        return (f"edgecam: {self.frames} frames in {self.seconds:.1f} s{state}: {self.fps:.1f} FPS, "
                f"inference {self.mean_inference_ms:.1f} ms mean ({self.model})\n"
                f"  counts per label: {counts}{more}")


class StopFlag:
    """Set by SIGINT/SIGTERM (installed on the main thread) or by a key press."""

    def __init__(self):
        self.event = threading.Event()
        self.signal: Optional[int] = None
        self.reload = threading.Event()
        self._old = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGHUP"):
            self._old[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda s, f: self.reload.set())

    def _on_signal(self, signum, frame) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting
        self.signal = signum
        self.event.set()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()


class _Worker(threading.Thread):
    """A daemon thread that records the exception it died of, for the caller to re-raise."""

    def __init__(self, name: str, target: Callable[[], None]):
        super().__init__(name=name, daemon=True)
        self._fn = target
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # re-raised on the calling thread
            self.error = exc


def hud(model: Model, fps: float, extra: List[str] = ()) -> List[str]:
    cost = [model.cost_line] if model.cost_line else []
    return overlay.hud_lines(model.name, model.alpha, model.rho, model.size, fps,
                             model.engine.last_ms, [*cost, *extra])


def annotate(image: np.ndarray, result: Optional[Result], hud_text: List[str]) -> np.ndarray:
    if result is None:
        overlay.draw_hud(image, hud_text)
        return image
    return overlay.draw(image, result.detections, result.classes, hud_text)


def run_file(cfg: Config, source: Source, model: Model, stop: StopFlag,
             extra_hud: Optional[Callable[[], List[str]]] = None, hooks: Hooks = Hooks(),
             window=None, stages: Optional[Dict[str, List[float]]] = None) -> Summary:
    """Every frame of a file, image or folder, in order. Returns the run's summary.

    Frames are inferred ``workers`` at a time, each on its own interpreter (the calling
    thread is worker 0), and put back in order before the writer: on a small machine whose
    interpreter threads fill every core, frame-parallel single-thread interpreters lose less
    to decode and encode than one interpreter whose threads meet at a barrier per layer.

    ``stages`` (for `edgecam bench`): a dict that gets, per frame, the seconds spent in
    decode, preprocess, inference, postprocess, overlay and output."""
    workers = cfg.model.workers or cfg.model.threads
    model.set_threads(max(1, cfg.model.threads // workers))
    models = [model] + [model.replica() for _ in range(workers - 1)]
    q_in: queue.Queue = queue.Queue(maxsize=8)
    q_out: queue.Queue = queue.Queue(maxsize=16)
    summary = Summary(model=model.name)
    video, jsonl = open_outputs(cfg.output, source.fps or 30.0, source.size)
    draw = bool(video or window) and cfg.overlay.enabled
    meter = RateMeter()
    interp = cv2.INTER_AREA if source.still else cv2.INTER_LINEAR
    timed = stages is not None
    if timed:
        for name in ("decode", "preprocess", "inference", "postprocess", "overlay", "output"):
            stages.setdefault(name, [])
    clock = time.perf_counter
    progress = Progress(source.frame_count, Path(source.name).name[:30])
    start = time.monotonic()

    def put(q: queue.Queue, item) -> bool:
        """Put unless stopped: after a stop nobody may be taking from ``q``."""
        while True:
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                if stop.is_set():
                    return False

    def reader() -> None:
        seq = 0
        try:
            while not stop.is_set():
                t0 = clock()
                frame = source.read()
                if frame is None:
                    break
                if timed:
                    stages["decode"].append(clock() - t0)
                if not put(q_in, (seq, frame)):
                    break
                seq += 1
        finally:
            for _ in models:  # one END for each worker
                if not put(q_in, END):
                    break

    def infer(m: Model) -> None:
        beat = heartbeat_of(hooks).worker(threading.current_thread().name)
        try:
            while not stop.is_set():
                beat.alive()
                try:
                    item = q_in.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is END:
                    break
                seq, frame = item
                t0 = clock()
                result = m.infer(frame.image, frame.index, frame.t, frame.captured, interp)
                if timed:
                    t1 = clock()
                    b0, b1 = m.engine.last_span
                    stages["preprocess"].append(b0 - t0)
                    stages["inference"].append(b1 - b0)
                    stages["postprocess"].append(t1 - b1)
                hooks.alive()
                q_out.put((seq, frame, result))  # the writer always drains q_out
        finally:
            beat.done()
            q_out.put(END)

    def emit(frame: Frame, result: Result) -> None:
        if summary.first_result_s is None:
            summary.first_result_s = time.monotonic() - start
            hooks.ready()
        meter.tick()
        summary.frames += 1
        summary.add(result)
        progress.update(1, f"{result.inference_ms:5.1f} ms")
        t0 = clock()
        if jsonl:
            jsonl.write(result.to_json())
        t1 = t2 = t3 = clock()
        if video or window:
            image = frame.image
            if draw:
                image = annotate(image, result, hud(model, meter.rate, extra_hud() if extra_hud else []))
            t2 = clock()
            if video:
                video.write(image)
            t3 = clock()
            if window is not None and window.show(image) in (27, ord("q")):
                stop.set()
        if timed:  # output: JSON line + video frame; overlay: the drawing
            stages["overlay"].append(t2 - t1)
            stages["output"].append((t1 - t0) + (t3 - t2))

    failure: List[BaseException] = []   # the first output error: the run stops on it

    def close_outputs() -> None:
        for sink in (video, jsonl):
            if sink is not None:
                try:
                    sink.close()
                except Exception as exc:
                    failure.append(exc)

    def emit_or_stop(frame: Frame, result: Result) -> None:
        """emit(); after an output fails, stop the run and discard what is still coming."""
        if failure:
            return
        try:
            emit(frame, result)
        except Exception as exc:  # ENOSPC, EIO, a dead encoder ...: stop, say why
            failure.append(exc)
            stop.set()
            close_outputs()

    def writer() -> None:
        """Results back in frame order, until every worker has finished (draining q_out
        even after a failure, so that no worker ever blocks on it)."""
        pending: Dict[int, tuple] = {}
        following, ended = 0, 0
        try:
            while ended < len(models):
                item = q_out.get()
                if item is END:
                    ended += 1
                    continue
                pending[item[0]] = item
                while following in pending:
                    _, frame, result = pending.pop(following)
                    following += 1
                    emit_or_stop(frame, result)
            for seq in sorted(pending):  # never happens: workers take frames in order
                emit_or_stop(*pending.pop(seq)[1:])
        finally:
            if not failure:
                close_outputs()

    threads = [_Worker("edgecam-reader", reader), _Worker("edgecam-writer", writer)]
    threads += [_Worker(f"edgecam-infer-{i}", lambda m=m: infer(m)) for i, m in enumerate(models[1:], 1)]
    for t in threads:
        t.start()
    try:
        infer(models[0])
    finally:
        summary.interrupted = stop.is_set()
        stop.set()               # the reader and the other workers stop; the writer finishes
        for t in threads:
            t.join(timeout=30)
        progress.close()
        summary.seconds = time.monotonic() - start
    for t in threads:
        if t.error is not None:
            raise t.error
    if failure:
        raise failure[0]
    return summary


@dataclass
class LiveState:
    """What the live threads share; each field has one writer."""

    model: Model                             # output loop (model switch)
    result: Optional[Result] = None          # inference thread
    status: str = "starting"                 # capture thread: running | reconnecting | ended
    frames: int = 0                          # capture thread: camera frames captured
    results: int = 0                         # inference thread
    reconnects: int = 0                      # capture thread
    shown: int = 0                           # output loop: frames shown
    paused: bool = False                     # output loop
    overlay: bool = True                     # output loop
    latency_ms: float = 0.0                  # output loop: capture -> display of the last frame
    result_age_ms: float = 0.0               # output loop: age of the frame behind the drawn result
    camera: RateMeter = field(default_factory=RateMeter)
    inference: RateMeter = field(default_factory=RateMeter)
    dropped: int = 0                         # output loop: camera frames never shown, to stay live
    not_inferred: int = 0                    # output loop: camera frames the model skipped
    models: List[str] = field(default_factory=list)   # what the model switch offers

    def snapshot(self) -> dict:
        r = self.result
        return {"status": self.status, "model": self.model.name, "task": self.model.task,
                "alpha": self.model.alpha, "rho": round(self.model.rho, 3), "input_px": self.model.size,
                "frames": self.frames, "shown": self.shown, "results": self.results,
                "camera_fps": round(self.camera.rate, 2), "inference_fps": round(self.inference.rate, 2),
                "inference_ms": round(r.inference_ms, 2) if r else None,
                "latency_ms": round(self.latency_ms, 1), "result_age_ms": round(self.result_age_ms, 1),
                "dropped": self.dropped, "not_inferred": self.not_inferred,
                "reconnects": self.reconnects, "paused": self.paused, "models": self.models,
                "latest": r.to_json() if r else None}

    def hud_extra(self) -> List[str]:
        lines = [f"camera {self.camera.rate:4.1f} FPS  inference {self.inference.rate:4.1f} FPS",
                 f"latency {self.latency_ms:4.0f} ms  dropped {self.dropped}  not inferred {self.not_inferred}"]
        if self.status != "running":
            lines.append(self.status.upper())
        if self.paused:
            lines.append("PAUSED")
        return lines


IDLE_S = 0.2      # with no new frame (reconnecting, paused), re-show the last one this often
RELOAD_BOUND_S = 120.0   # a reload or model switch (loading a model) may block the output loop this long


def status_line(state: "LiveState", source: Source) -> str:
    """systemd's STATUS= line in live mode."""
    if state.status == "waiting for camera":
        return f"{state.model.name}: waiting for camera {source.name} ({getattr(source, 'error', '')})"
    return (f"{state.model.name}: camera {state.camera.rate:.1f} FPS, inference "
            f"{state.inference.rate:.1f} FPS, {state.status}")


def run_live(cfg: Config, source: Source, model: Model, stop: StopFlag, outputs: "LiveOutputs",
             hooks: Hooks = Hooks(), switch_model: Optional[Callable[..., Optional[Model]]] = None,
             on_reload: Optional[Callable[[LiveState], None]] = None,
             models: Sequence[str] = ()) -> Summary:
    """Newest-frame-only processing of a live source until it ends or ``stop`` is set.

    ``switch_model(current)`` gives the next model (the `m` key, the browser's "next"),
    ``switch_model(current, name)`` a named one (the browser's choice among ``models``)."""
    state = LiveState(model=model, overlay=cfg.overlay.enabled, models=list(models))
    to_infer, to_show = LatestSlot(), LatestSlot()
    summary = Summary(model=model.name)
    start = time.monotonic()
    backoff_max = cfg.source.reconnect_max_s
    reconnectable = type(source).reopen is not Source.reopen   # a file played live just ends
    # every worker checks in (health.py): a camera read, reopen or backoff is bounded work,
    # so a frozen or absent camera never looks like a hang; a stuck model or output does
    heartbeat = heartbeat_of(hooks)
    cap_beat, inf_beat, out_beat = (heartbeat.worker(n) for n in ("capture", "inference", "output"))

    def reconnect() -> bool:
        """Reopen the camera with backoff (each try logged) until it delivers; False if stopped."""
        delay, waiting = 0.5, getattr(source, "waiting", False)
        state.status = "waiting for camera" if waiting else "reconnecting"
        hooks.status(status_line(state, source))
        if not waiting:
            log.warning("%s stopped delivering frames; reconnecting", source.name)
        while True:
            with cap_beat.within(delay):
                if stop.event.wait(delay):
                    return False
            try:
                with cap_beat.within(getattr(source, "open_timeout_s", 30.0)):
                    source.reopen()
            except SourceError as exc:
                delay = min(delay * 2, backoff_max)
                log.warning("%s; next try in %.1f s", exc, delay)
                if waiting:
                    hooks.status(status_line(state, source))
                continue
            if waiting:
                log.info("camera %s is here: starting", source.name)
            else:
                state.reconnects += 1
                log.info("%s reconnected (reconnect #%d)", source.name, state.reconnects)
            state.camera.settle()
            return True

    def capture() -> None:
        state.camera.settle()
        read_bound = getattr(source, "read_timeout_s", 12.0)
        try:
            while not stop.is_set():
                with cap_beat.within(read_bound):
                    frame = source.read()
                if frame is not None:
                    state.status = "running"
                    state.frames += 1
                    state.camera.tick(frame.captured)
                    to_infer.put(frame)
                    to_show.put(frame)
                    continue
                if not reconnectable:
                    state.status = "ended"
                    return
                if not reconnect():
                    return
        finally:
            cap_beat.done()
            to_infer.put(END)
            to_show.put(END)

    def infer() -> None:
        try:
            infer_loop()
        finally:
            inf_beat.done()

    def infer_loop() -> None:
        while not stop.is_set():
            inf_beat.alive()
            frame = to_infer.get(timeout=0.5)
            if frame is END:
                return
            if frame is None or state.paused:
                continue
            m = state.model
            # the camera's lores copy when it is big enough for this model (a switch may change ρ)
            small = frame.lores is not None and min(frame.lores.shape[:2]) >= m.size
            image = frame.lores if small else frame.image
            result = m.infer(image, frame.index, frame.t, frame.captured)
            if small and m.task == "detect":
                result = _rescale(result, frame.lores.shape, frame.image.shape)
            state.result = result
            state.results += 1
            state.inference.tick()
            summary.add(result)
            if summary.first_result_s is None:
                summary.first_result_s = time.monotonic() - start
                hooks.ready()
            hooks.alive()
            outputs.result(result)
            to_show.wake()  # draw it now on the frame on screen, not one camera frame later

    def render(frame: Frame) -> np.ndarray:
        r = state.result
        state.result_age_ms = (time.monotonic() - r.captured) * 1000 if r else 0.0
        if not state.overlay:
            return frame.image
        return annotate(frame.image.copy(), r, hud(state.model, state.camera.rate, state.hud_extra()))

    def switch(name: Optional[str]) -> None:
        if switch_model is None:
            return
        new = switch_model(state.model, name) if name else switch_model(state.model)
        if new is not None:
            state.model = new
            summary.model = new.name

    threads = [_Worker("edgecam-capture", capture), _Worker("edgecam-inference", infer)]
    for t in threads:
        t.start()
    last: Optional[Frame] = None          # the frame on screen
    image: Optional[np.ndarray] = None    # ... as drawn
    last_idle = last_status = 0.0
    try:
        while not stop.is_set():
            out_beat.alive()
            frame = to_show.get(timeout=IDLE_S)
            if frame is END or any(t.error for t in threads):
                break
            if stop.reload.is_set():
                stop.reload.clear()
                if on_reload:
                    with out_beat.within(RELOAD_BOUND_S):   # it may load a model
                        on_reload(state)
            now = time.monotonic()
            state.dropped, state.not_inferred = to_show.dropped, to_infer.dropped
            if frame is WAKE:                 # a new result: redraw the frame on screen with it
                if last is not None and not state.paused:
                    image = render(last)
                    key = outputs.idle(image, state)
                else:
                    key = -1
            elif frame is not None and not state.paused:
                last = frame
                image = render(frame)
                key = outputs.frame(image, state)
                summary.frames += 1
                state.shown += 1
                state.latency_ms = (time.monotonic() - frame.captured) * 1000
            elif now - last_idle >= IDLE_S:   # keep the status, the keys and the browser alive
                last_idle = now
                image = render(last) if last is not None else None
                key = outputs.idle(image, state)
            else:
                key = -1
            if now - last_status > 5:
                last_status = now
                hooks.status(status_line(state, source))
            request = outputs.request()
            if request is not None:
                with out_beat.within(RELOAD_BOUND_S):
                    switch(request)
            if key in (27, ord("q")):
                break
            if key == ord(" "):
                state.paused = not state.paused
            elif key == ord("o"):
                state.overlay = not state.overlay
            elif key == ord("s") and image is not None:
                outputs.snapshot(image)
            elif key == ord("m"):
                with out_beat.within(RELOAD_BOUND_S):
                    switch(None)
    finally:
        out_beat.done()
        summary.interrupted = stop.signal is not None
        stop.set()
        threads[1].join(timeout=2)
        threads[0].join(timeout=6)        # a read blocked on a stalled stream times out in 5 s
        summary.seconds = time.monotonic() - start
    for t in threads:
        if t.error is not None:
            raise t.error
    return summary


def _rescale(result: Result, small_shape, full_shape) -> Result:
    """Boxes found on the camera's lores stream, mapped to the main stream's pixels."""
    sy, sx = full_shape[0] / small_shape[0], full_shape[1] / small_shape[1]
    result.detections = [replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy))
                         for d in result.detections]
    return result


class LiveOutputs:
    """The live mode's outputs, all driven from the output loop except result()."""

    def __init__(self, cfg: Config, source: Source, window=None, web=None):
        self.cfg = cfg
        self.window = window
        self.web = web
        # a camera still awaited (live.WaitingCamera): its video starts with its first frame, at
        # the rate and size it turns out to have (the path is checked now)
        self._source = source if getattr(source, "waiting", False) and cfg.output.video else None
        out = replace(cfg.output, video=None) if self._source else cfg.output
        if self._source:
            VideoSink.check(cfg.output.video, overwrite=True)
        # each output fails alone: closed, logged once, retried (sinks.Retrying)
        self.video, self.jsonl = open_outputs(out, source.fps or cfg.source.fps, source.size, live=True)
        self.snapshot_dir = Path(cfg.output.snapshot_dir)
        self._json_lock = threading.Lock()

    def result(self, result: Result) -> None:     # inference thread
        if self.jsonl:
            with self._json_lock:
                self.jsonl.write(result.to_json())

    def frame(self, image: np.ndarray, state: LiveState) -> int:
        """A new camera frame, drawn: record it, publish it, show it; return the key pressed."""
        if self._source is not None:
            src, self._source = self._source, None
            try:
                self.video = open_live_video(self.cfg.output, src.fps or self.cfg.source.fps, src.size)
            except EdgecamError as exc:   # the camera came; the recording cannot: say so, run on
                log.error("not recording: %s", exc)
        if self.video:
            self.video.write(image)
        if self.web:
            self.web.publish(image, state.snapshot())
        return self.window.show(image) if self.window else -1

    def idle(self, image: Optional[np.ndarray], state: LiveState) -> int:
        """No new camera frame (a new result, reconnecting, paused): refresh the window and
        the browser with the picture on screen, redrawn; nothing is recorded."""
        if self.web:
            self.web.publish(image, state.snapshot())
        return self.window.show(image) if self.window and image is not None else -1

    def request(self) -> Optional[str]:
        """A model switch asked for in the browser: "" for the next model, or a name."""
        return self.web.take_request() if self.web else None

    def snapshot(self, image: np.ndarray) -> Optional[Path]:
        path = self.snapshot_dir / time.strftime("edgecam-%Y%m%d-%H%M%S.png")
        try:   # a snapshot that cannot be written never stops the pipeline
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            saved, why = cv2.imwrite(str(path), image), None
        except OSError as exc:
            saved, why = False, exc
        if not saved:
            log.error("cannot save a snapshot to %s: %s", path, write_refusal(self.snapshot_dir, why))
            return None
        log.info("snapshot saved to %s", path)
        return path

    def close(self) -> None:
        for sink in (self.video, self.jsonl, self.window, self.web):
            if sink is not None:
                try:
                    sink.close()
                except Exception as exc:  # closing one must not keep the others open
                    log.warning("closing %s failed: %s", type(sink).__name__, exc)
