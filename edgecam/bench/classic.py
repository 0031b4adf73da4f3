"""The classic loop: what the well-known Raspberry Pi TFLite examples do, one frame after
another on one thread (read, cvtColor, resize, set_tensor, invoke, get outputs, draw, write).
The reference edgecam's pipeline is measured against, in file mode and live."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from edgecam.bench.loopback import read_stamp
from edgecam.bench.stats import summarize_ms
from edgecam.bench.variants import config
from edgecam.model.loader import load_model
from edgecam.pipeline.clock import STAGES


class ClassicModel:
    """What the classic example loop needs from the model: interpreter, input size, labels."""

    def __init__(self, spec: dict, uri: Optional[str] = None):
        cfg = config(spec, uri=uri)
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


def baseline(spec: dict) -> dict:
    tmp = Path(spec["tmp"])
    classic = ClassicModel(spec)
    cap = cv2.VideoCapture(spec["source"])
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = cv2.VideoWriter(str(tmp / "baseline.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
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


def live_baseline(spec: dict) -> dict:
    """The classic loop reading the same camera: every frame it reads, one after another."""
    classic = ClassicModel(spec, uri=spec["url"])
    cap = cv2.VideoCapture(spec["url"], cv2.CAP_FFMPEG)
    t: Dict[str, List[float]] = {k: [] for k in STAGES}
    drawn, received, first = [], [], None
    deadline = time.monotonic() + spec["live_seconds"]
    cpu0 = time.process_time()
    while time.monotonic() < deadline:
        ok, frame = cap.read()
        if not ok:
            break
        stamp = read_stamp(frame)
        received.append(stamp)
        classic.step(frame, t)
        now = time.monotonic()
        if first is None:
            first = now
        drawn.append([stamp, now, t["inference"][-1] * 1000.0 if t["inference"] else 0.0])
    cpu = time.process_time() - cpu0
    cap.release()
    return {"drawn": drawn, "received": [s for s in received if s is not None],
            "results": len(drawn), "shown": len(drawn), "first_result_at": first, "cpu_run_s": cpu}
