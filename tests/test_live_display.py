"""Live mode's hand-overs, on the loopback camera with the real v1_ssd: every camera frame is
drawn once and in order, with its own result when the model keeps up; a slow model drops
frames (never queues them) while the picture keeps the camera's rate; and the interpreter's
threads run on cores of their own (edgecam/model/cores.py)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from edgecam.config import load_config
from edgecam.model.loader import load_model
from edgecam.model.cores import Placement
from edgecam.pipeline import StopFlag, run_live
from edgecam.sinks import Sink, Sinks
from edgecam.sources import open_source


@pytest.fixture(scope="module")
def camera(media):
    from loopback import LoopbackCamera
    cam = LoopbackCamera(media / "bottle-detection.mp4", fps=30.0, stamp=True)
    cam.start()
    yield cam
    cam.stop()


class Screen(Sink):
    """Notes each frame shown (as a display would show it) and each redraw."""

    def __init__(self):
        self.shown = []        # (frame index, capture time, result's frame or None, time shown)
        self.redrawn = []      # result's frame of each redraw

    def frame(self, image, info):
        r = info.result
        self.shown.append((info.frame.index, info.frame.captured, None if r is None else r.frame,
                           time.monotonic()))

    def refresh(self, image, info):
        if info.result is not None:
            self.redrawn.append(info.result.frame)


def run_for(camera, mirror, seconds: float, slow_s: float = 0.0):
    cfg = load_config(None, {"model": {"name": "v1_ssd", "dir": str(mirror)}, "source": {"uri": camera.url},
                             "output": {"display": "none"}, "track": {"enabled": False}})
    model = load_model(cfg)
    if slow_s:                                  # a model slower than the camera (a slower board)
        infer = model.infer

        def slow(*args, **kw):
            time.sleep(slow_s)
            return infer(*args, **kw)
        model.infer = slow
    source = open_source(cfg.source, model.size)
    screen, stop = Screen(), StopFlag()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    try:
        summary = run_live(cfg, source, model, stop, Sinks([screen]))
    finally:
        timer.cancel()
        source.close()
    return summary, screen


def in_order(shown) -> bool:
    return all(a[1] < b[1] for a, b in zip(shown, shown[1:]))


def inference_ms(mirror, media) -> float:
    """v1_ssd's median inference time here, on a frame of the clip (the first call warms it)."""
    import cv2
    cap = cv2.VideoCapture(str(media / "bottle-detection.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    model = load_model(load_config(None, {"model": {"name": "v1_ssd", "dir": str(mirror)}}))
    times = []
    for _ in range(6):
        model.infer(frame)
        times.append(model.engine.last_ms)
    return float(np.median(times[1:]))


def test_a_model_that_keeps_up_draws_each_frame_once_with_its_own_result(camera, mirror, media):
    # v1_ssd takes ~5-15 ms a frame with ai-edge-litert against 33 ms between a 30 fps camera's
    # frames; an interpreter that takes longer (tflite-runtime 2.14's x86 wheel: ~65 ms) gets
    # a camera it can keep up with, at most one frame per two inferences' time
    ms = inference_ms(mirror, media)
    fps = min(30.0, 1000.0 / (2 * ms))
    seconds = max(4.0, 50 / fps)
    if fps < 30.0:
        from loopback import LoopbackCamera
        camera = LoopbackCamera(media / "bottle-detection.mp4", fps=fps, stamp=True)
        camera.start()
    try:
        summary, screen = run_for(camera, mirror, seconds)
    finally:
        if fps < 30.0:
            camera.stop()
    assert len(screen.shown) > 40 * fps / 30 * seconds / 4, \
        f"only {len(screen.shown)} frames shown in {seconds:.0f} s of a {fps:.1f} fps camera ({ms:.0f} ms a frame)"
    assert in_order(screen.shown), "a frame was shown after a later one"
    indices = [s[0] for s in screen.shown]
    assert len(set(indices)) == len(indices), "a camera frame was shown twice as a new frame"
    own = sum(1 for i, _, r, _ in screen.shown if r == i)
    # nearly every frame gets its own result before it is shown (under heavy load a few are
    # shown with the previous one)
    assert own >= 0.7 * len(screen.shown), f"{own} of {len(screen.shown)} frames shown with their own result"


def test_a_slow_model_drops_frames_and_the_picture_keeps_the_camera_rate(camera, mirror):
    summary, screen = run_for(camera, mirror, 4.0, slow_s=0.12)
    shown, results = len(screen.shown), summary.inferences
    assert in_order(screen.shown), "a frame was shown after a later one"
    assert shown >= 2.5 * results, f"{shown} frames shown for {results} results: the picture waits for the model"
    assert 8 <= results <= 40, results                     # ~1 per 0.12 s: nothing queued behind it
    # each result is drawn within about one inference of its frame (no queue grows), either on
    # its own frame or redrawn on the newer frame on screen
    ages = [t - c for i, c, r, t in screen.shown if r == i]
    assert screen.redrawn, "no result was redrawn on the newer frame on screen"
    assert not ages or max(ages) < 1.0, f"a frame waited {max(ages):.2f} s for its result"


def test_the_inference_thread_and_the_interpreters_threads_get_a_core_each(mirror):
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        pytest.skip("needs Linux and at least 2 cores")
    cfg = load_config(None, {"model": {"name": "v1_ssd", "dir": str(mirror), "threads": 2}})
    model = load_model(cfg)
    # 2 threads: the caller and a worker (tflite-runtime 2.14 also starts XNNPACK's, idle on uint8)
    workers = model.engine.workers
    assert 1 <= len(workers) <= 2, workers
    enough = len(cores) >= len(workers) + 1                    # else each is left to the scheduler
    everywhere = (set(cores), [set(cores)] * len(workers))
    placed = ({cores[0]}, [{c} for c in cores[1:len(workers) + 1]])
    image = np.zeros((360, 640, 3), np.uint8)
    unpinned = model.infer(image).detections
    seen = {}

    class Load:                        # other programs' share of the CPUs, as Placement reads it
        share = staticmethod(lambda: Load.value)
        value = 0.0

    def affinity():
        return os.sched_getaffinity(threading.get_native_id()), [os.sched_getaffinity(w) for w in workers]

    def inference():
        placement = Placement()
        placement.load = Load
        placement.update(model.engine)                          # a quiet machine: pinned
        seen["pinned"], (seen["me"], seen["worker"]) = placement.pinned, affinity()
        seen["result"] = model.infer(image).detections
        Load.value, placement.due = 0.8, 0.0                    # others keep the cores busy: unpinned
        placement.update(model.engine)
        seen["busy"] = placement.pinned, affinity()
        Load.value, placement.due = 0.1, 0.0                    # quiet again: pinned again
        placement.update(model.engine)
        seen["quiet"] = placement.pinned, affinity()

    t = threading.Thread(target=inference)
    t.start()
    t.join(30)
    assert seen["result"] == unpinned                          # the same result, only placed
    if not enough:
        assert (seen["pinned"], (seen["me"], seen["worker"])) == (False, everywhere)
        assert seen["busy"] == seen["quiet"] == (False, everywhere)
    else:
        assert (seen["pinned"], (seen["me"], seen["worker"])) == (True, placed)
        assert seen["busy"] == (False, everywhere)
        assert seen["quiet"] == (True, placed)
    assert os.sched_getaffinity(0) == set(cores)              # the other threads are left alone
