"""File mode: every frame of a video file, an image or a folder, in order.

    reader thread          inference pool (N threads)        main thread
    read ──▶ submit ──────▶ infer on its own interpreter ──▶ FIFO of futures ──▶ draw ──▶ sinks

The reader decodes ahead and submits each frame to a pool of N inference threads, each with
an interpreter of its own, and puts the frame and its future on a bounded FIFO; the main
thread takes them off in order, waits for each result, counts it, draws it and hands it to the
sinks. Decode, inference and encode overlap and no frame is dropped or reordered: the FIFO
keeps the order (picamera2's multiprocessing demo does the same), no reorder buffer needed.

N = ``model.workers``, default ``model.threads``, each interpreter with threads/N threads: on
a small machine whose interpreter threads fill every core, frame-parallel single-thread
interpreters lose less to decode and encode than one interpreter whose threads meet at a
barrier after every layer (measured: 62.2 vs 59.2 FPS with the video on, 2 cores)."""

from __future__ import annotations

import queue
from dataclasses import replace
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator, List, Optional, Tuple

import cv2

from edgecam.config import Config
from edgecam.model import Model, Result
from edgecam.model.interface import Keep
from edgecam.pipeline.clock import NO_CLOCK, StageClock
from edgecam.pipeline.health import Beat
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.meter import RateMeter
from edgecam.pipeline.summary import Summary, Tally
from edgecam.pipeline.sync import END, StopFlag, Workers, put_until_stopped
from edgecam.sinks import QUIT, FrameInfo, Sinks
from edgecam.sinks.overlay import annotate, hud
from edgecam.sources import Frame, Source
from edgecam.track.motion import MotionGate, gate_for
from edgecam.teach.stage import TeachStage
from edgecam.track.stage import TrackStage, tracking_on


def run_file(cfg: Config, source: Source, model: Model, stop: StopFlag, sinks: Sinks,
             hooks: Optional[Hooks] = None, clock: StageClock = NO_CLOCK,
             teach: Optional[TeachStage] = None) -> Summary:
    """Every frame of ``source`` through ``model`` into ``sinks``, in order, until the source
    ends or ``stop`` is set. ``clock`` times each stage (for `edgecam bench`); ``teach``: the
    taught sets, applied to each result before tracking (edgecam/teach/)."""
    hooks = Hooks() if hooks is None else hooks   # (one per run: a default made once would share its heartbeat)
    models = interpreters(model, cfg.model.workers or cfg.model.threads, cfg.model.threads)
    stage = TrackStage(cfg, source.size) if tracking_on(cfg, model.task, source.still) else None
    # what each inference keeps, passed with the call: the config's, down to the tracker's floor
    keep = replace(model.defaults, floor=stage.floor if stage is not None else None)
    infer = Inference(models, cv2.INTER_AREA if source.still else cv2.INTER_LINEAR, clock, keep)
    fifo: queue.Queue = queue.Queue(maxsize=2 * len(models) + 2)
    tally = Tally(model.name, hooks)
    writer = Writer(sinks, model, cfg.overlay.enabled, clock, stage)
    pool = ThreadPoolExecutor(len(models), thread_name_prefix="edgecam-infer")
    # the main thread checks in (health.py) while it waits for each result in turn: a stuck
    # interpreter (or sink) stops its check-ins, and a supervisor's watchdog stops pinging
    beat = hooks.heartbeat.worker("output")
    try:
        with Workers(stop) as workers:
            gate = gate_for(cfg)
            workers.start("edgecam-reader", lambda: read_ahead(source, pool, infer, fifo, stop, clock, gate))
            for frame, future in in_order(fifo, stop, workers, beat):
                result = future.result()
                if teach is not None:
                    result = teach.step(result, frame.image)
                if stage is not None:
                    result = stage.step(result, keep.threshold)
                tally.result(result)
                writer.write(frame, result)
                if any(i.kind == QUIT for i in sinks.intents()):
                    stop.set()
            interrupted = stop.is_set()
    finally:
        beat.done()
        pool.shutdown(wait=True, cancel_futures=True)
    tally.summary.frames = writer.frames
    if stage is not None:
        tally.summary.tracked(stage)
    return tally.finish(interrupted)


def interpreters(model: Model, workers: int, threads: int) -> List[Model]:
    """``workers`` copies of ``model``, each on an interpreter of its own with threads/workers threads."""
    model.set_threads(max(1, threads // workers))
    return [model] + [model.replica() for _ in range(workers - 1)]


class Inference:
    """One frame through whichever interpreter is free (one per pool thread)."""

    def __init__(self, models: List[Model], interpolation: int, clock: StageClock, keep: Optional[Keep] = None):
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        for m in models:
            self.free.put(m)
        self.interpolation = interpolation
        self.clock = clock
        self.keep = keep
        self.name, self.task = models[0].name, models[0].task

    def skip(self, frame: Frame) -> Future:
        """A frame the model does not see: its result, already done."""
        done: Future = Future()
        done.set_result(Result.skipped(frame, self.name, self.task))
        return done

    def __call__(self, frame: Frame):
        m = self.free.get()
        try:
            t0 = self.clock.now()
            result = m.infer(frame.image, frame.index, frame.t, frame.captured, self.interpolation, self.keep)
            self.clock.model(t0, m.engine.last_span)
            return result
        finally:
            self.free.put(m)


def read_ahead(source: Source, pool: ThreadPoolExecutor, infer: Inference, fifo: queue.Queue,
               stop: StopFlag, clock: StageClock, gate: Optional[MotionGate] = None) -> None:
    """The reader thread: decode, submit (unless the motion gate says nothing moved), queue
    the future in frame order; END at the end."""
    try:
        while not stop.is_set():
            t0 = clock.now()
            frame = source.read()
            if frame is None:
                break
            clock.add("decode", clock.now() - t0)
            future = pool.submit(infer, frame) if gate is None or gate.infer(frame) else infer.skip(frame)
            if not put_until_stopped(fifo, (frame, future), stop):
                break
    finally:
        put_until_stopped(fifo, END, stop)


def in_order(fifo: queue.Queue, stop: StopFlag, workers: Workers, beat: Beat) -> Iterator[Tuple[Frame, Future]]:
    """The FIFO's (frame, future) pairs until END, a stop, or a failed reader."""
    while not stop.is_set() and not workers.failed():
        beat.alive()
        try:
            item = fifo.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is END:
            return
        yield item


class Writer:
    """The main thread's side: each result to the sinks, each frame drawn and shown/recorded."""

    def __init__(self, sinks: Sinks, model: Model, overlay: bool, clock: StageClock, stage=None):
        self.sinks, self.model, self.clock, self.stage = sinks, model, clock, stage
        self.draw = overlay and sinks.wants_frames
        self.meter = RateMeter()
        self.frames = 0

    def write(self, frame: Frame, result) -> None:
        clock = self.clock
        self.meter.tick()
        self.frames += 1
        t0 = clock.now()
        self.sinks.result(result)
        t1 = t2 = t3 = clock.now()
        if self.sinks.wants_frames:
            image = frame.image
            if self.draw:
                scene = self.stage.scene() if self.stage is not None else ()
                state = [f"state {result.state['label']}"] if result.state else []   # (--teach-frame)
                image = annotate(image, result, hud(self.model, self.meter.rate, state), scene)
            t2 = clock.now()
            self.sinks.frame(image, FrameInfo(result, frame=frame))
            t3 = clock.now()
        clock.add("overlay", t2 - t1)                     # the drawing
        clock.add("output", (t1 - t0) + (t3 - t2))        # the JSON line, the video frame, the window
