"""The pieces with no model in them, tested alone (no model mirror needed): the leaky slot,
the runner's workers, the rate meter, reload's change detection, source URI routing, the
sink fan-out and the schema-derived flags."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest

from edgecam.cli import _overrides, _run_parser
from edgecam.config import HOT, MODEL, RESTART, SETTINGS, load_config
from edgecam.errors import ConfigError, ModelError, SourceError
from edgecam.model.interface import Keep
from edgecam.pipeline import END, LatestSlot, RateMeter, StopFlag, Workers
from edgecam.pipeline.tuning import Tuning
from edgecam.service.reload import Reloader, by_class, changed_keys
from edgecam.sinks import FrameInfo, Sink, Sinks
from edgecam.sinks.window import CLOSED, KEYS
from edgecam.sources import open_source, source_kind
from edgecam.sources.opencv import OpenCVCameraSource
from edgecam.config import SourceConfig


# -- the leaky slot of one ----------------------------------------------------------------------

def test_latest_slot_keeps_the_newest_and_counts_the_dropped():
    slot = LatestSlot()
    assert slot.get(timeout=0.01) is None                 # nothing yet: None after the timeout
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0) == 4 and slot.dropped == 4
    assert slot.get(timeout=0.01) is None                 # taken


def test_latest_slot_offer_keeps_a_newer_item_and_end():
    slot = LatestSlot()
    got = []
    reader = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    reader.start()
    time.sleep(0.05)
    slot.offer(3, lambda waiting, item: waiting > item)   # a waiting reader gets it at once
    reader.join(2)
    assert got == [3]
    slot.put(7)
    slot.offer(5, lambda waiting, item: waiting > item)   # 7 is newer: it stays, 5 is not "dropped"
    assert slot.get(timeout=0) == 7 and slot.dropped == 0
    slot.put(END)
    slot.offer(9, lambda waiting, item: False)            # nothing displaces END
    assert slot.get(timeout=0) is END and slot.get(timeout=0) is END   # every reader sees END
    assert slot.dropped == 0


# -- workers: start, join, re-raise ---------------------------------------------------------------

def test_workers_reraise_the_first_error_and_stop_the_others():
    stop = StopFlag()
    ran = threading.Event()

    def patient():
        while not stop.wait(0.01):
            pass
        ran.set()

    def failing():
        raise SourceError("the camera fell over")

    with pytest.raises(SourceError, match="fell over"):
        with Workers(stop) as workers:
            workers.start("patient", patient)
            workers.start("failing", failing)
            deadline = time.monotonic() + 5
            while not workers.failed() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert workers.failed()
    assert stop.is_set() and ran.wait(2), "a worker's error stops the others"


def test_workers_join_is_bounded_and_a_clean_run_raises_nothing():
    stop = StopFlag()
    forever = threading.Event()
    t0 = time.monotonic()
    with Workers(stop) as workers:
        workers.start("stuck", lambda: forever.wait(30), join_timeout=0.2)
        workers.start("quick", lambda: None)
    assert time.monotonic() - t0 < 5 and stop.is_set()
    forever.set()


# -- the rate meter -------------------------------------------------------------------------------

def test_rate_meter_counts_events_per_second_over_its_window():
    m = RateMeter(window=2.0)
    assert m.rate == 0.0
    for i in range(31):                                    # 10 Hz for 3 s
        m.tick(100.0 + i * 0.1)
    assert m.rate_at(103.0) == pytest.approx(10.0)
    assert len(m.times) == 21                              # only the last 2 s are kept
    assert m.rate_at(105.5) == 0.0                         # nothing for longer than the window
    m.tick(110.0)                                          # a gap: the old ticks fall out
    assert m.rate_at(110.0) == 0.0 and len(m.times) == 1


# -- reload's change detection ----------------------------------------------------------------------

class _Model:
    name, task = "v1_ssd", "detect"


class _State:
    """What a reload touches of the live state: the model, and the run's live settings."""

    def __init__(self, cfg):
        self.model, self.used = _Model(), []
        self.tuning = Tuning(cfg)

    def use(self, model):
        self.model = model
        self.used.append(model)


class _Switcher:
    def __init__(self, result):
        self.result, self.asked = result, []

    def load(self, cfg):
        self.asked.append(cfg.model.name)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_changed_keys_and_their_reload_classes(tmp_path):
    old = load_config(None, {"postprocess": {"threshold": 0.5}})
    new = load_config(None, {"postprocess": {"threshold": 0.6}, "source": {"width": 640},
                             "model": {"name": "v1_ssd", "mirror": "/m"}})
    changes = changed_keys(old, new)
    assert changes == {"postprocess.threshold": (0.5, 0.6), "source.width": (1280, 640),
                       "model.name": ("v2_ssd", "v1_ssd"), "model.mirror": (None, "/m")}
    classes = by_class(changes)
    assert classes[HOT] == ["postprocess.threshold"] and classes[RESTART] == ["source.width"]
    assert classes[MODEL] == ["model.name"] and classes["unused"] == ["model.mirror"]
    assert changed_keys(old, load_config(None, {"postprocess": {"threshold": 0.5}})) == {}


def test_reload_applies_hot_keys_and_refuses_a_model_that_fails(tmp_path, caplog):
    path = tmp_path / "config.yaml"
    path.write_text("postprocess:\n  threshold: 0.5\n")
    cfg = load_config(path)
    switcher = _Switcher(ModelError("model file x does not exist"))
    reload, state = Reloader(cfg), _State(cfg)
    state.tuning.loader = lambda trial: state.use(switcher.load(trial))    # the runner's model loader
    told = []
    state.tuning.watch(lambda key, value: told.append((key, value)))
    path.write_text("postprocess:\n  threshold: 0.7\noverlay:\n  enabled: false\nsource:\n  width: 640\n")
    with caplog.at_level(logging.INFO):
        assert reload(state) == ["overlay.enabled", "postprocess.threshold"]
    assert state.tuning.keep().threshold == 0.7 and state.tuning.view()["overlay"] is False
    assert told == [("overlay.enabled", False), ("postprocess.threshold", 0.7)]   # every output hears of it
    assert "source.width changed" in caplog.text and cfg.source.width == 1280
    assert reload(state) == []                             # nothing changed since
    kept = "postprocess:\n  threshold: 0.7\noverlay:\n  enabled: false\nsource:\n  width: 640\n"
    path.write_text(kept + "model:\n  name: v1_0.25_128\n")
    assert reload(state) == [] and switcher.asked == ["v1_0.25_128"]
    assert state.used == [] and "keeping v1_ssd" in caplog.text
    switcher.result = _Model()
    path.write_text(kept + "model:\n  name: v3\n")
    assert reload(state) == ["model.name"] and len(state.used) == 1 and cfg.model.name == "v3"
    assert told[-1] == ("model.name", "v3")


def test_live_set_checks_like_the_config_and_answers_the_value_in_force():
    cfg = load_config(None)
    tuning, switched = Tuning(cfg, floor=0.25), []

    def switch(name):                      # the runner's model switch: refuses what it cannot load
        if name != "v1_0.25_128":
            raise ConfigError(f"cannot switch to {name}: not a provisioned detect model (v1_0.25_128)")
        switched.append(name)
    tuning.on("model.name", switch)
    assert tuning.set("threshold", "0.6") == (True, "postprocess.threshold set to 0.6", 0.6)
    assert tuning.keep() == Keep(0.6, 3, frozenset(), 0.25) and cfg.postprocess.threshold == 0.6
    done, why, value = tuning.set("postprocess.threshold", 7)
    assert not done and "between 0.0 and 1.0" in why and value == 0.6 and tuning.keep().threshold == 0.6
    assert tuning.set("overlay.enabled", b"false")[:1] == (True,) and tuning.view()["overlay"] is False
    assert tuning.set("pause", "on") == (True, "paused set to true", True) and tuning.paused is True
    assert not tuning.set("paused", "maybe")[0] and tuning.paused is True
    done, why, _ = tuning.set("output.snapshot_dir", "/etc")    # names a file: not remotely
    assert not done and "cannot be changed while running" in why
    done, why, value = tuning.set("model", "v3")
    assert not done and "not a provisioned detect model" in why and value == "v2_ssd" and switched == []
    assert tuning.set("model", "v1_0.25_128")[0] and cfg.model.name == "v1_0.25_128" and switched == ["v1_0.25_128"]


def test_live_set_of_classes_lines_and_zones_as_text_keeps_counts_by_name():
    from edgecam.track.stage import TrackStage
    cfg = load_config(None, {"rules": {"lines": ["0.5,0,0.5,1,door"]}})
    tuning, stage = Tuning(cfg), TrackStage(cfg, (640, 360))
    tuning.on("rules.lines", stage.set_lines)
    tuning.on("rules.zones", stage.set_zones)
    stage.rules.lines[0].counts["person"] = {"in": 2, "out": 1}
    assert tuning.set("classes", "person, car")[0]
    assert tuning.keep().classes == {"person", "car"} and cfg.postprocess.classes == ["person", "car"]
    assert tuning.set("rules.lines", "0.6,0,0.6,1,door; 0,0.5,1,0.5,shelf")[0]
    counts = stage.status()["counts"]
    assert counts["door"]["in"] == 2 and counts["shelf"]["in"] == 0
    assert stage.rules.lines[0].p1 == (0.6, 0.0) and cfg.rules.lines[1] == "0,0.5,1,0.5,shelf"
    done, why, _ = tuning.set("lines", ["0.5,0,0.5"])
    assert not done and "X1,Y1,X2,Y2" in why and len(stage.rules.lines) == 2
    zone = {"name": "mat", "points": [[0, 0.5], [1, 0.5], [1, 1]]}
    assert tuning.set("zones", json.dumps([zone]))[0]
    stage.rules.zones[0].entered["person"] = 3
    moved = dict(zone, points=[[0, 0.6], [1, 0.6], [1, 1]])
    assert tuning.set("zones", [moved, dict(zone, name="step")])[0]
    assert stage.status()["counts"]["mat"]["entered"] == 3 and set(stage.status()["counts"]) >= {"mat", "step"}
    assert stage.status()["zones"][0]["points"][0] == [0.0, 0.6]


# -- source URI routing -------------------------------------------------------------------------------

@pytest.mark.parametrize("uri,kind", [
    ("auto", "auto"), ("picamera2", "picamera2"), ("picamera2:1", "picamera2"), ("0", "camera"),
    ("/dev/video2", "camera"), ("rtsp://cam/stream", "camera"), ("http://127.0.0.1:8080/x.mjpg", "camera"),
    ("csi://0", "camera"), ("videotestsrc ! appsink", "camera"), ("clip.mp4", "file"),
    ("photos/", "file"), ("shots/*.jpg", "file"), (" clip.mp4 ", "file"),
])
def test_source_uri_routing(uri, kind):
    assert source_kind(uri) == kind


def test_camera_uris_resolve_to_their_backend():
    cfg = SourceConfig(width=1920, height=1080, fps=30)
    kind, target, _ = OpenCVCameraSource._resolve("csi://1", cfg)
    assert kind == "gstreamer" and "sensor-id=1" in target and "width=1920" in target
    assert OpenCVCameraSource._resolve("rtsp://cam/x", cfg)[0] == "stream"
    assert OpenCVCameraSource._resolve("/dev/video0", cfg)[0] == "camera"
    with pytest.raises(SourceError, match="use csi://0"):
        OpenCVCameraSource._resolve("csi://left", cfg)


def test_file_uris_fail_in_one_sentence(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(SourceError, match="has no images"):
        open_source(SourceConfig(uri=str(tmp_path)))
    with pytest.raises(SourceError, match="image file .* does not exist"):
        open_source(SourceConfig(uri=str(tmp_path / "missing.jpg")))
    with pytest.raises(SourceError, match="video file .* does not exist"):
        open_source(SourceConfig(uri=str(tmp_path / "missing.mp4")))


# -- the sink side --------------------------------------------------------------------------------

class _Recorder(Sink):
    def __init__(self, name, log, wants_frames=True, fail=False):
        self.name, self.log, self.wants_frames, self.fail = name, log, wants_frames, fail

    def result(self, result):
        self.log.append((self.name, "result", result))

    def frame(self, image, info):
        self.log.append((self.name, "frame", info.result))

    def close(self):
        self.log.append((self.name, "close", None))
        if self.fail:
            raise OSError("disk gone")


def test_sinks_fan_out_and_close_every_one():
    log = []
    sinks = Sinks([_Recorder("json", log, wants_frames=False), None, _Recorder("video", log, fail=True),
                   _Recorder("window", log)])
    assert sinks.wants_frames
    sinks.result("r1")
    sinks.frame(np.zeros((2, 2, 3), np.uint8), FrameInfo("r1"))
    sinks.close()                                          # one failing close does not stop the others
    assert log == [("json", "result", "r1"), ("video", "result", "r1"), ("window", "result", "r1"),
                   ("video", "frame", "r1"), ("window", "frame", "r1"),
                   ("window", "close", None), ("video", "close", None), ("json", "close", None)]
    assert not Sinks([_Recorder("json", [], wants_frames=False)]).wants_frames


def test_window_keys_become_intents():
    assert {KEYS[k] for k in (27, ord("q"), CLOSED)} == {"quit"}
    assert (KEYS[ord(" ")], KEYS[ord("o")], KEYS[ord("s")], KEYS[ord("m")]) == \
        ("pause", "overlay", "snapshot", "next-model")


# -- flags derived from the config schema ------------------------------------------------------------

def test_every_flag_comes_from_the_schema():
    parser = _run_parser()
    flags = {o for a in parser._actions for o in a.option_strings}
    for s in SETTINGS.values():
        if s.flag:
            assert s.flag in flags, s.key
    a = parser.parse_args(["--no-overlay", "--realtime", "--threads", "3", "--resize", "crop"])
    assert _overrides(a) == {"overlay": {"enabled": False}, "source": {"realtime": True},
                             "model": {"threads": 3}, "preprocess": {"resize": "crop"}}
    assert _overrides(parser.parse_args([])) == {}
