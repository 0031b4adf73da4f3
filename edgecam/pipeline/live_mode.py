"""Live mode: the newest frame only, from a camera or a stream, until it ends or a stop.

    capture thread         inference thread                    main thread (the output loop)
    read ──▶ slot of one ──▶ infer the newest frame ──▶ frame + result ──▶ draw ──▶ sinks
      └──── slot of one (only while the model is busy) ─────────────────────▶┘

The capture thread puts each camera frame into a leaky slot of one (the Coral camera
example's leaky queue): the inference thread always takes the newest frame. The output loop
draws every camera frame once, with the freshest result on it (as rpicam-apps does): a frame
the model takes comes to it from the inference thread, with its own result; a frame that
arrives while the model is busy with an earlier one comes straight from the capture thread
and is drawn at once with the latest result, so the picture keeps the camera's rate when
inference is slower than the camera. A result for a frame older than the one on screen
redraws the one on screen.

Where the time goes (`edgecam bench`'s live runs, v1_ssd, 2 threads, a 2-core VM):
- invoke(): 4.4 ms when XNNPACK's second thread runs on the other core, 7.5 ms when the
  scheduler wakes it on the inference thread's own core (which it did in about two frames
  of three: an idle virtual CPU looks busy to the guest). The inference thread and the
  interpreter's threads are pinned a core each (model.pin_threads, edgecam/model/cores.py).
- Hand-overs: about 0.3 ms from capture to the model and 0.3-0.5 ms from result to drawing
  (a thread wake-up each); the classic loop pays neither, but spends 0.4 ms more on
  preprocessing (colour conversion of the whole frame) than edgecam does.
- When the model keeps up, the output loop wakes once per frame (when its result lands),
  never while the model runs; a run with nothing to show (no window, video or browser view)
  draws nothing, and the output loop is not woken for frames at all.
- The frame reaches the model before any bookkeeping, and a result reaches the output loop
  before it is counted."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Iterable, Optional, Tuple

from edgecam.config import PAUSED, Config
from edgecam.errors import ConfigError
from edgecam.model import Model, Result
from edgecam.model.interface import Keep
from edgecam.model.switch import ModelSwitcher
from edgecam.model.cores import Placement
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.reconnect import Reconnector, status_line
from edgecam.pipeline.state import LiveState
from edgecam.pipeline.summary import Summary, Tally
from edgecam.pipeline.sync import END, LatestSlot, StopFlag, Workers
from edgecam.pipeline.tuning import Tuning
from edgecam.sinks import (NEXT_MODEL, OVERLAY, PAUSE, QUIT, SET, SNAPSHOT, FrameInfo, Intent, Sinks,
                           save_snapshot)
from edgecam.sinks.overlay import annotate, hud
from edgecam.sources import Frame, Source
from edgecam.store.sink import HistorySink
from edgecam.track.motion import gate_for
from edgecam.track.stage import TrackStage, tracking_on

log = logging.getLogger("edgecam.pipeline")

IDLE_S = 0.2          # with no new frame (reconnecting, paused), re-show the last one this often
STATUS_EVERY_S = 5.0  # the supervisor's status line
RELOAD_BOUND_S = 120.0   # a reload or model switch (loading a model) may block the output loop this long


def run_live(cfg: Config, source: Source, model: Model, stop: StopFlag, sinks: Sinks,
             hooks: Optional[Hooks] = None, switcher: Optional[ModelSwitcher] = None,
             on_reload=None, teach=None) -> Summary:
    """Newest-frame-only processing of a live source until it ends or ``stop`` is set.
    ``switcher`` serves the model intents (the `m` key, the browser, MQTT); ``on_reload(state)``
    runs on the output loop after a SIGHUP. Every live setting goes through the run's Tuning."""
    hooks = Hooks() if hooks is None else hooks   # (one per run: a default made once would share its heartbeat)
    return LiveRun(cfg, source, model, stop, sinks, hooks, switcher, on_reload, teach).run()


class LiveRun:
    def __init__(self, cfg: Config, source: Source, model: Model, stop: StopFlag, sinks: Sinks,
                 hooks: Hooks, switcher: Optional[ModelSwitcher], on_reload, teach=None):
        self.cfg, self.source, self.stop, self.sinks, self.teach = cfg, source, stop, sinks, teach
        self.hooks, self.switcher, self.on_reload = hooks, switcher, on_reload
        self.stage = TrackStage(cfg, source.size) if tracking_on(cfg, model.task, source.still) else None
        self.tuning = self.tune(cfg)
        self.state = LiveState(model=model, tuning=self.tuning,
                               models=switcher.options(model.task) if switcher else [],
                               on_model=self.model_switched, tracking=self.stage, teach=teach)
        for history in sinks.sinks:          # today's totals, resumed from the history
            if isinstance(history, HistorySink):
                self.state.history, self.state.today = history, history.today
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
            item = self.to_show.get(timeout=IDLE_S)
            if item is END or workers.failed():
                return
            self.reload_if_asked()
            self.state.dropped, self.state.not_inferred = self.to_show.dropped, self.to_infer.dropped
            self.display.step(item)
            self.report_status()
            if not self.obey(self.sinks.intents()):
                return

    def tune(self, cfg: Config) -> Tuning:
        """The live settings, wired: what carries each change out, and who is told of it."""
        tuning = Tuning(cfg, self.stage.floor if self.stage is not None else None)
        tuning.on("model.name", self.switch_model)
        tuning.loader = self.load_model
        if self.stage is not None:               # tracking off: lines and zones count nothing (said at the start)
            tuning.on("rules.lines", self.stage.set_lines)
            tuning.on("rules.zones", self.stage.set_zones)
        tuning.watch(self.sinks.tuned)
        return tuning

    def switch_model(self, name: str) -> None:
        """model.name changed (the browser, MQTT, the `m` key): the model loaded, or ConfigError."""
        if self.switcher is None:
            raise ConfigError("this run has no model switch (--compare runs its models side by side)")
        with self.beats["output"].within(RELOAD_BOUND_S):   # it loads a model
            self.state.use(self.switcher.pick(self.state.model, name))

    def load_model(self, cfg: Config) -> None:
        """A reload's model keys: the model ``cfg`` names, loaded and run (EdgecamError: not)."""
        if self.switcher is None:
            raise ConfigError("this run has no model switch (--compare runs its models side by side)")
        with self.beats["output"].within(RELOAD_BOUND_S):   # it loads a model
            self.state.use(self.switcher.load(cfg))

    def model_switched(self, model: Model) -> None:
        self.hooks.model_loaded(model.name)

    # -- the capture thread ------------------------------------------------------------------
    def capture(self) -> None:
        state, beat = self.state, self.beats["capture"]
        state.camera.settle()
        read_bound = self.source.read_timeout_s
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
                if self.sinks.wants_frames and state.inferring is not None:
                    self.to_show.put(frame)                # the model is busy: shown now, with the latest result
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
        placement = Placement(self.cfg.model.pin_threads)
        while not self.stop.is_set():
            beat.alive()
            frame = self.to_infer.get(timeout=0.5)
            if frame is END:
                return
            if frame is None or state.paused:
                continue
            placement.update(state.model.engine)           # this thread and the model's own: a core each
            state.inferring = frame.index
            if self.gate is not None and not self.gate.infer(frame):
                self.hand_over(frame)
                self.report(self.track(Result.skipped(frame, state.model.name, state.model.task)))
                continue
            t0 = time.monotonic()
            result = infer_frame(state.model, frame, self.tuning.keep())
            if self.teach is not None:                     # taught labels and the frame's state
                result = self.teach.step(result, frame.image)
            state.infer_s = 0.8 * state.infer_s + 0.2 * (time.monotonic() - t0) if state.infer_s else \
                time.monotonic() - t0
            state.result = self.track(result)
            self.hand_over(frame)                          # drawn now, with its own result; counted meanwhile
            state.results += 1
            state.inference.tick()
            self.report(state.result)

    def hand_over(self, frame: Frame) -> None:
        """The frame just inferred, to the output loop (unless a later camera frame waits there:
        that one is drawn with this result instead); the model is free for the next frame."""
        if self.sinks.wants_frames:
            self.to_show.offer(frame, later)
        self.state.inferring = None

    def track(self, result: Result) -> Result:
        """A result (or a frame the motion gate skipped) through the tracking stage."""
        if self.stage is not None and result.task == "detect":
            result = self.stage.step(result, self.tuning.threshold)
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
        """Carry out what the person watching asked for, and answer the asker; False to quit."""
        for intent in intents:
            if intent.kind == QUIT:
                return False
            done, why, value = self.carry_out(intent)
            if intent.reply is not None:
                intent.reply(done, why, value)
        return True

    def carry_out(self, intent: Intent) -> Tuple[bool, str, Any]:
        """One intent: ``(done, one sentence, the value in force)``; every change goes through
        the tuning, so that every output hears of it."""
        tuning = self.tuning
        if intent.kind == PAUSE:
            return tuning.set(PAUSED, not tuning.paused)
        if intent.kind == OVERLAY:
            return tuning.set("overlay.enabled", not self.cfg.overlay.enabled)
        if intent.kind == SET:
            return tuning.set(intent.key or "", intent.value)
        if intent.kind == NEXT_MODEL:
            name = self.switcher.next_name(self.state.model) if self.switcher else None
            if not name:
                return False, "there is no other provisioned model of this task to switch to", self.state.model.name
            return tuning.set("model.name", name)
        if intent.kind == SNAPSHOT:
            return self.snapshot()
        return False, f"{intent.kind} is not something this run does", None

    def snapshot(self) -> Tuple[bool, str, Any]:
        if self.display.image is None:
            return False, "no snapshot saved: there is no picture yet", None
        path = save_snapshot(self.display.image, self.cfg.output.snapshot_dir)
        if path is None:
            return False, "no snapshot saved: the folder cannot be written (the log says why)", None
        return True, f"snapshot saved to {path}", str(path)


def later(waiting: Frame, frame: Frame) -> bool:
    return waiting.captured > frame.captured


def infer_frame(model: Model, frame: Frame, keep: Optional[Keep] = None) -> Result:
    """The result for one frame, keeping what ``keep`` says (the live settings): from the
    camera's lores copy when it is big enough for this model (a switch may change ρ), with
    boxes mapped back to the main stream's pixels."""
    small = frame.lores if frame.lores is not None and min(frame.lores.shape[:2]) >= model.size else None
    result = model.infer(frame.image if small is None else small, frame.index, frame.t, frame.captured, keep=keep)
    if small is not None and model.task == "detect":
        result = rescale(result, small.shape, frame.image.shape)
    return result


def rescale(result: Result, small_shape, full_shape) -> Result:
    """Boxes found on the camera's lores stream, mapped to the main stream's pixels."""
    sy, sx = full_shape[0] / small_shape[0], full_shape[1] / small_shape[1]
    result.detections = [replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy))
                         for d in result.detections]
    return result


class Display:
    """The output loop's drawing: each camera frame drawn once, with the freshest result. A
    frame comes from the inference thread with its own result, or from the capture thread
    while the model is busy with an earlier one; a result for a frame already on screen (or
    an older one) redraws the one on screen."""

    def __init__(self, sinks: Sinks, state: LiveState, stage: Optional[TrackStage] = None):
        self.sinks, self.state, self.stage = sinks, state, stage
        self.last: Optional[Frame] = None          # the frame on screen
        self.image = None                          # ... as drawn
        self.drawn: Optional[Result] = None        # ... with this result
        self.last_idle = 0.0

    def step(self, item: Optional[Frame]) -> None:
        if not self.sinks.wants_frames:
            return
        if item is not None and not self.state.paused:
            if self.last is not None and item.captured <= self.last.captured:
                self.redraw()                      # a new result for the frame on screen, or an older one
            else:
                self.present(item)
            return
        now = time.monotonic()
        if now - self.last_idle >= IDLE_S:         # keep the status, the keys and the browser alive
            self.last_idle = now
            self.redraw(force=True)

    def present(self, frame: Frame) -> None:
        """A new frame, drawn, to the sinks."""
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
            image = annotate(image.copy(), drawn, hud(s.model, s.camera.rate, s.hud_extra()), s.scene())
        return image, FrameInfo(drawn, s.snapshot, frame)

    def moved(self, r: Optional[Result], frame: Frame) -> Optional[Result]:
        """``r`` drawn on a later camera frame: its tracked boxes where their motion puts
        them at that frame's capture (track.predict), not where they were."""
        if self.stage is None or r is None or r.task != "detect" or r.frame == frame.index:
            return r
        return replace(r, detections=self.stage.predicted(frame.t))
