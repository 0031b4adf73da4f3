"""Live mode: the newest frame only, from a camera or a stream, until it ends or a stop.

    capture thread         inference thread               main thread (the output loop)
    read ──▶ slot of one ──▶ infer the newest frame ──▶ result ──▶ draw ──▶ sinks
                   └────────────── slot of one ──────────────────▶┘

The capture thread puts each camera frame into two leaky slots of one (the Coral camera
example's leaky queue): the inference thread always takes the newest frame, and the output
loop draws every camera frame with the freshest result on it (as rpicam-apps does), so the
picture keeps the camera's rate when inference is slower than the camera.

Where the time goes, and what keeps a result fresh (`edgecam bench`'s live runs):
- When the model keeps up with the camera, the output loop holds a new frame until its own
  result lands (at most about two inference times) and draws it once, with that result. It
  used to draw it at once with the previous result and again when its own landed: twice
  the drawing, and the first drawing ran on a core the interpreter's threads were using, so
  every layer's barrier waited for it. When the model is slower than the camera, nothing
  waits: each frame is drawn with the latest result, and redrawn when a new one lands.
- A run with nothing to show (no window, video or browser view) draws nothing, and the
  output loop is not woken for frames at all.
- Measured on a 2-core VM: when the output loop wakes as a frame arrives (to hold it), the
  second core is busy a moment before the model starts, and XNNPACK's second thread starts
  promptly (invoke 4.0-4.3 ms, as in the classic loop); a design that left the output loop
  asleep until the result measured 7.5 ms, the model running on one core in effect. So is a
  headless run (nothing wakes the second core: see the bench's headless row).
- The frame reaches the model before any bookkeeping, and a result reaches the output loop
  before it is counted."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Iterable, Optional

from edgecam.config import Config
from edgecam.model import Model, ModelSwitcher, Result
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.reconnect import Reconnector, status_line
from edgecam.pipeline.state import LiveState
from edgecam.pipeline.summary import Summary, Tally
from edgecam.pipeline.sync import END, WAKE, LatestSlot, StopFlag, Workers
from edgecam.sinks import (MODEL, NEXT_MODEL, OVERLAY, PAUSE, QUIT, SET, SNAPSHOT, FrameInfo, Intent, Sinks,
                           save_snapshot)
from edgecam.sinks.overlay import annotate, hud
from edgecam.sources import Frame, Source
from edgecam.track.motion import gate_for
from edgecam.track.stage import TrackStage, tracking_on

log = logging.getLogger("edgecam.pipeline")

IDLE_S = 0.2          # with no new frame (reconnecting, paused), re-show the last one this often
STATUS_EVERY_S = 5.0  # the supervisor's status line
RELOAD_BOUND_S = 120.0   # a reload or model switch (loading a model) may block the output loop this long


def run_live(cfg: Config, source: Source, model: Model, stop: StopFlag, sinks: Sinks,
             hooks: Hooks = Hooks(), switcher: Optional[ModelSwitcher] = None,
             on_reload=None, on_set=None) -> Summary:
    """Newest-frame-only processing of a live source until it ends or ``stop`` is set.
    ``switcher`` serves the model intents (the `m` key, the browser); ``on_reload(state)``
    runs on the output loop after a SIGHUP; ``on_set(state, key, value) -> (done, why)`` serves
    the SET intents (the browser's controls, MQTT's set topics)."""
    return LiveRun(cfg, source, model, stop, sinks, hooks, switcher, on_reload, on_set).run()


class LiveRun:
    def __init__(self, cfg: Config, source: Source, model: Model, stop: StopFlag, sinks: Sinks,
                 hooks: Hooks, switcher: Optional[ModelSwitcher], on_reload, on_set=None):
        self.cfg, self.source, self.stop, self.sinks = cfg, source, stop, sinks
        self.hooks, self.switcher, self.on_reload, self.on_set = hooks, switcher, on_reload, on_set
        self.stage = TrackStage(cfg, source.size) if tracking_on(cfg, model.task, source.still) else None
        self.state = LiveState(model=model, overlay=cfg.overlay.enabled,
                               models=switcher.options(model.task) if switcher else [],
                               on_model=self.model_switched, tracking=self.stage)
        if self.stage is not None:
            self.stage.attach(model)
        sinks.watch(self.state.snapshot)
        self.to_infer, self.to_show = LatestSlot(), LatestSlot()
        self.tally = Tally(model.name, hooks)
        # every worker checks in (health.py): a camera read, reopen or backoff is bounded work,
        # so a frozen or absent camera never looks like a hang; a stuck model or output does
        self.beats = {n: hooks.heartbeat.worker(n) for n in ("capture", "inference", "output")}
        self.reconnector = Reconnector(source, cfg.source.reconnect_max_s, hooks, stop, self.state,
                                       self.beats["capture"])
        self.gate = gate_for(cfg)
        self.display = Display(sinks, self.state, self.stage if cfg.track.predict else None)
        self.last_status = 0.0

    def run(self) -> Summary:
        with Workers(self.stop) as workers:
            workers.start("edgecam-inference", self.infer, join_timeout=2)
            # a read blocked on a stalled stream times out in 5 s
            workers.start("edgecam-capture", self.capture, join_timeout=6)
            try:
                self.loop(workers)
            finally:
                self.beats["output"].done()
            interrupted = self.stop.signal is not None
        self.tally.summary.frames = self.state.shown if self.sinks.wants_frames else self.state.frames
        if self.stage is not None:
            self.tally.summary.tracked(self.stage)
        return self.tally.finish(interrupted, self.state.model.name)

    def loop(self, workers: Workers) -> None:
        """The output loop: take the newest frame (or a new result), reload if asked, draw and
        show, report, obey the person watching."""
        while not self.stop.is_set():
            self.beats["output"].alive()
            item = self.to_show.get(timeout=self.display.wait_s())
            if item is END or workers.failed():
                return
            self.reload_if_asked()
            self.state.dropped, self.state.not_inferred = self.to_show.dropped, self.to_infer.dropped
            self.display.step(item)
            self.report_status()
            if not self.obey(self.sinks.intents()):
                return

    def model_switched(self, model: Model) -> None:
        if self.stage is not None:
            self.stage.attach(model)
        self.hooks.model_loaded(model.name)

    # -- the capture thread ------------------------------------------------------------------
    def capture(self) -> None:
        state, beat = self.state, self.beats["capture"]
        state.camera.settle()
        read_bound = getattr(self.source, "read_timeout_s", 12.0)
        try:
            while not self.stop.is_set():
                with beat.within(read_bound):
                    frame = self.source.read()
                if frame is None:
                    if not self.source.reconnectable:
                        state.status = "ended"            # a file played live just ends
                        return
                    if not self.reconnector.reconnect():
                        return
                    continue
                self.to_infer.put(frame)                   # the model first: it is on the critical path
                if self.sinks.wants_frames:
                    self.to_show.put(frame)
                state.status = "running"
                state.frames += 1
                state.camera.tick(frame.captured)
        finally:
            beat.done()
            self.to_infer.put(END)
            self.to_show.put(END)

    # -- the inference thread ----------------------------------------------------------------
    def infer(self) -> None:
        try:
            self.infer_loop()
        finally:
            self.beats["inference"].done()

    def infer_loop(self) -> None:
        state, beat = self.state, self.beats["inference"]
        while not self.stop.is_set():
            beat.alive()
            frame = self.to_infer.get(timeout=0.5)
            if frame is END:
                return
            if frame is None or state.paused:
                continue
            if self.gate is not None and not self.gate.infer(frame):
                self.report(self.track(Result.skipped(frame, state.model.name, state.model.task)))
                continue
            state.inferring = frame.index
            t0 = time.monotonic()
            result = infer_frame(state.model, frame)
            state.infer_s = 0.8 * state.infer_s + 0.2 * (time.monotonic() - t0) if state.infer_s else \
                time.monotonic() - t0
            state.result = self.track(result)
            state.inferring = None
            if self.sinks.wants_frames:
                self.to_show.wake()   # draw it now, not one camera frame later; count it meanwhile
            state.results += 1
            state.inference.tick()
            self.report(state.result)

    def track(self, result: Result) -> Result:
        """A result (or a frame the motion gate skipped) through the tracking stage."""
        if self.stage is not None and result.task == "detect":
            result = self.stage.step(result, self.state.model.threshold)
        return result

    def report(self, result: Result) -> None:
        self.tally.result(result)
        self.sinks.result(result)

    # -- the output loop's other duties --------------------------------------------------------
    def reload_if_asked(self) -> None:
        if self.stop.reload.is_set():
            self.stop.reload.clear()
            if self.on_reload:
                with self.beats["output"].within(RELOAD_BOUND_S):   # it may load a model
                    self.on_reload(self.state)

    def report_status(self) -> None:
        now = time.monotonic()
        if now - self.last_status > STATUS_EVERY_S:
            self.last_status = now
            self.hooks.status(status_line(self.state, self.source))

    def obey(self, intents: Iterable[Intent]) -> bool:
        """Carry out what the person watching asked for; False to quit."""
        state = self.state
        for intent in intents:
            if intent.kind == QUIT:
                return False
            if intent.kind == PAUSE:
                state.paused = not state.paused
            elif intent.kind == OVERLAY:
                state.overlay = not state.overlay
            elif intent.kind == SNAPSHOT and self.display.image is not None:
                save_snapshot(self.display.image, self.cfg.output.snapshot_dir)
            elif intent.kind in (NEXT_MODEL, MODEL) and self.switcher is not None:
                with self.beats["output"].within(RELOAD_BOUND_S):   # it loads a model
                    new = self.switcher.switch(state.model, intent.model)
                if new is not None:
                    state.use(new)
            elif intent.kind == SET:
                self.set(intent)
        return True

    def set(self, intent: Intent) -> None:
        """A setting changed from the browser or MQTT: applied as SIGHUP applies it; the asker
        is told whether it was done."""
        if self.on_set is None:
            done, why = False, "settings cannot be changed in this run"
        else:
            with self.beats["output"].within(RELOAD_BOUND_S):   # a model change loads a model
                done, why = self.on_set(self.state, intent.key, intent.value)
        if intent.reply is not None:
            intent.reply(done, why)


def infer_frame(model: Model, frame: Frame) -> Result:
    """The result for one frame: from the camera's lores copy when it is big enough for this
    model (a switch may change ρ), with boxes mapped back to the main stream's pixels."""
    small = frame.lores is not None and min(frame.lores.shape[:2]) >= model.size
    result = model.infer(frame.lores if small else frame.image, frame.index, frame.t, frame.captured)
    if small and model.task == "detect":
        result = rescale(result, frame.lores.shape, frame.image.shape)
    return result


def rescale(result: Result, small_shape, full_shape) -> Result:
    """Boxes found on the camera's lores stream, mapped to the main stream's pixels."""
    sy, sx = full_shape[0] / small_shape[0], full_shape[1] / small_shape[1]
    result.detections = [replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy))
                         for d in result.detections]
    return result


class Display:
    """The output loop's drawing: each camera frame drawn once, with the freshest result."""

    def __init__(self, sinks: Sinks, state: LiveState, stage: Optional[TrackStage] = None):
        self.sinks, self.state, self.stage = sinks, state, stage
        self.last: Optional[Frame] = None          # the frame on screen
        self.image = None                          # ... as drawn
        self.drawn: Optional[Result] = None        # ... with this result
        self.pending: Optional[Frame] = None       # a frame held for its own result
        self.deadline = 0.0
        self.last_idle = 0.0

    def wait_s(self) -> float:
        if self.pending is None:
            return IDLE_S
        return max(0.0, min(IDLE_S, self.deadline - time.monotonic()))

    def step(self, item) -> None:
        now = time.monotonic()
        if not self.sinks.wants_frames:
            return
        if item is WAKE:
            self.on_result()
        elif item is not None and not self.state.paused:
            self.on_frame(item, now)
        elif now - self.last_idle >= IDLE_S:  # keep the status, the keys and the browser alive
            self.last_idle = now
            self.redraw(force=True)
        if self.pending is not None and now >= self.deadline:
            self.present(self.pending)         # its result is late: show it with the latest one

    def on_frame(self, frame: Frame, now: float) -> None:
        if self.pending is not None:
            self.present(self.pending)         # the next frame came first
        if self.state.inferring in (None, frame.index):
            self.pending, self.deadline = frame, now + self.hold_s()
        else:
            self.present(frame)                # the model is busy with an older frame

    def on_result(self) -> None:
        r = self.state.result
        if self.pending is not None and r is not None and r.frame == self.pending.index:
            self.present(self.pending)
        elif not self.state.paused:
            self.redraw()

    def hold_s(self) -> float:
        """How long a frame waits for its own result: a little over one inference, never more
        than one camera frame interval."""
        interval = 1.0 / self.state.camera.rate if self.state.camera.rate > 0 else IDLE_S
        return min(1.5 * self.state.infer_s + 0.003, interval, IDLE_S)

    def present(self, frame: Frame) -> None:
        """A new frame, drawn, to the sinks."""
        if frame is self.pending:
            self.pending = None
        image, info = self.render(frame)
        self.sinks.frame(image, info)
        self.last, self.image = frame, image
        self.state.shown += 1
        self.state.latency_ms = (time.monotonic() - frame.captured) * 1000

    def redraw(self, force: bool = False) -> None:
        """The frame on screen again, with a new result (or the status only, without a frame)."""
        if self.last is None:
            if force:
                self.sinks.refresh(None, FrameInfo(None, self.state.snapshot))
            return
        if force or self.state.result is not self.drawn:
            self.image, info = self.render(self.last)
            self.sinks.refresh(self.image, info)

    def render(self, frame: Frame):
        s = self.state
        r = self.drawn = s.result
        s.result_age_ms = (time.monotonic() - r.captured) * 1000 if r else 0.0
        image, drawn = frame.image, self.moved(r, frame)
        if s.overlay:
            scene = s.tracking.scene() if s.tracking is not None else ()
            image = annotate(image.copy(), drawn, hud(s.model, s.camera.rate, s.hud_extra()), scene)
        return image, FrameInfo(drawn, s.snapshot, frame)

    def moved(self, r: Optional[Result], frame: Frame) -> Optional[Result]:
        """``r`` drawn on a later camera frame: its tracked boxes where their motion puts
        them at that frame's capture (track.predict), not where they were."""
        if self.stage is None or r is None or r.task != "detect" or r.frame == frame.index:
            return r
        return replace(r, detections=self.stage.predicted(frame.t))
