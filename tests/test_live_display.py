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


def test_a_model_that_keeps_up_draws_each_frame_once_with_its_own_result(camera, mirror):
    summary, screen = run_for(camera, mirror, 4.0)
    assert len(screen.shown) > 40, f"only {len(screen.shown)} frames shown in 4 s of a 30 fps camera"
    assert in_order(screen.shown), "a frame was shown after a later one"
    indices = [s[0] for s in screen.shown]
    assert len(set(indices)) == len(indices), "a camera frame was shown twice as a new frame"
    own = sum(1 for i, _, r, _ in screen.shown if r == i)
    # v1_ssd takes ~5-10 ms per frame against 33 ms between frames: nearly every frame gets its
    # own result before it is shown (under heavy load a few are shown with the previous one)
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
    assert len(model.engine.workers) == 1, model.engine.workers    # 2 threads: the caller + 1 worker
    image = np.zeros((360, 640, 3), np.uint8)
    unpinned = model.infer(image).detections
    seen = {}

    class Load:                        # other programs' share of the CPUs, as Placement reads it
        share = staticmethod(lambda: Load.value)
        value = 0.0

    def affinity():
        return os.sched_getaffinity(threading.get_native_id()), os.sched_getaffinity(model.engine.workers[0])

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
    assert seen["pinned"] and seen["me"] == {cores[0]} and seen["worker"] == {cores[1]}
    assert seen["result"] == unpinned                          # the same result, only placed
    assert seen["busy"] == (False, (set(cores), set(cores)))
    assert seen["quiet"] == (True, ({cores[0]}, {cores[1]}))
    assert os.sched_getaffinity(0) == set(cores)              # the other threads are left alone
