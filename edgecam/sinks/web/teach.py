"""Teaching from the browser: an event's or a live detection's crop added to the run's taught set
(``--teach SET``, teach.set; edgecam/teach/), or an example removed. The running teach stage
looks at the folder every 2 s and rebuilds (edgecam/teach/stage.py): no restart.

  GET  /api/teach                    {"set", "examples": [{"example": "label/name", "label"}],
                                      "live": the latest result's detections (index, label, ...)}
  GET  /api/teach/LABEL/NAME         an example's image
  POST /api/teach                    {"event": ID, "label": "car"} or {"event": ID, "not": true}
                                     (label ``not-<its detected label>``), or {"live": INDEX, ...}
                                     (a detection of the latest result, by its index in "live")
  POST /api/teach/remove             {"example": "label/name"}

An event's crop is the clean one the history keeps (edgecam/store/, never the annotated
snapshot); a live detection's, the latest clean frame's, cut here (the handler's thread, not
the pipeline's). A bad example (a bad label, no crop, no taught set) is refused with one
sentence (400) and nothing is written. POSTs pass the same Guard as every change (token in a
header, JSON, same site)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import unquote
from typing import Any, Callable, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.errors import UsageError
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.sinks.web.server import Reply
from edgecam.teach import taught
from edgecam.teach.embedder import crop_of
from edgecam.track.geometry import iou

JSON = "application/json"
PREFIX = "/api/teach"
MATCH_IOU = 0.3      # a live detection named by its box: the latest result's most like it, at least this much
TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp"}
Latest = Callable[[], Tuple[Optional[np.ndarray], Any]]    # (the clean frame, the result drawn on it)


class Teach:
    def __init__(self, folder: Optional[str], pad: float, history, latest: Latest):
        self.folder = Path(folder) if folder else None
        self.pad, self.history, self.latest = pad, history, latest

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    # -- reading ----------------------------------------------------------------------------
    def get(self, req: Request) -> Reply:
        if req.path == PREFIX:
            body = {"set": str(self.folder) if self.folder else None, "examples": self.examples(),
                    "live": [dict(d.to_json(), index=i) for i, d in enumerate(self._detections())]}
            return Reply(response(200, JSON, json.dumps(body).encode()))
        path = self._example(req.path[len(PREFIX) + 1:])
        if path is None or not path.is_file():
            return Reply(text(404, "no such example"))
        return Reply(response(200, TYPES[path.suffix.lower()], path.read_bytes()))

    def examples(self) -> List[dict]:
        if self.folder is None or not self.folder.is_dir():
            return []
        out: List[dict] = []
        for sub in sorted(p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(sub.iterdir()):
                if f.suffix.lower() in TYPES and not f.name.startswith(".") and len(out) < taught.MAX_IMAGES:
                    out.append({"example": f"{sub.name}/{f.name}", "label": sub.name})
        return out

    def _example(self, file: str) -> Optional[Path]:
        """``label/name`` inside the set, or None."""
        label, _, name = unquote(file).partition("/")
        if self.folder is None or not taught.LABEL.match(label) or not name or "/" in name or name.startswith(".") \
                or os.path.splitext(name)[1].lower() not in TYPES:
            return None
        return self.folder / label / name

    def _detections(self) -> list:
        _, result = self.latest()
        return list(getattr(result, "detections", None) or [])

    # -- changing ---------------------------------------------------------------------------
    def post(self, req: Request, body: dict) -> Reply:
        if self.folder is None:
            return refused("no taught set is configured: start the run with --teach SET (teach.set) to teach it "
                           "from the browser")
        try:
            if req.path == PREFIX + "/remove":
                return self.remove(body)
            if req.path == PREFIX:
                return self.add(body)
        except UsageError as exc:
            return refused(str(exc))
        return Reply(text(404, "not found"))

    def add(self, body: dict) -> Reply:
        if set(body) - {"event", "live", "box", "label", "not"} or ("event" in body) == ("live" in body):
            raise UsageError('send {"event": ID, "label": "car"} or {"event": ID, "not": true} (or "live": INDEX '
                             'for a detection of the latest result)')
        crop, detected, name = self._event(body["event"]) if "event" in body else \
            self._live(body["live"], body.get("box"))
        if body.get("not") is True:
            label = taught.NOT + detected
        elif isinstance(body.get("label"), str) and body["label"].strip() and "not" not in body:
            label = body["label"].strip()
        else:
            raise UsageError('say what it is: "label": "car", or "not": true for not-<its detected label>')
        path = taught.add_example(self.folder, label, crop, name)   # type: ignore[arg-type]
        example = f"{label}/{path.name}"
        return Reply(response(200, JSON, json.dumps({"done": True, "value": example, "message":
                                                     f"{example} added to the taught set: the run uses it within "
                                                     f"seconds"}).encode()))

    def _event(self, event_id) -> Tuple[np.ndarray, str, str]:
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id < 0:
            raise UsageError('"event" is an event\'s id (a whole number, as /api/events gives it)')
        found = self.history.crop(event_id) if self.history is not None else None
        if found is None:
            raise UsageError(f"event {event_id} has no crop in the history (an event without a picture, pruned, or "
                             f"older than crops): nothing was added")
        jpeg, event = found
        crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if crop is None:
            raise UsageError(f"event {event_id}'s crop cannot be decoded: nothing was added")
        return crop, str(event.get("detected_as") or event.get("label") or "object"), f"event-{event_id}.jpg"

    def _live(self, index, box=None) -> Tuple[np.ndarray, str, str]:
        """A detection of the latest result: the one most like ``box`` (as GET /api/teach listed it:
        the result may be newer now), else the one at ``index``."""
        image, result = self.latest()
        dets = list(getattr(result, "detections", None) or [])
        if isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box) and dets:
            best = max(range(len(dets)), key=lambda i: iou(dets[i].box, box))
            if iou(dets[best].box, box) < MATCH_IOU:
                raise UsageError("that detection is not in the latest result any more (list them again): nothing "
                                 "was added")
            index = best
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(dets) or image is None:
            raise UsageError(f'"live" is the index of a detection of the latest result (0 to {len(dets) - 1}; '
                             f'GET /api/teach lists them): nothing was added' if dets else
                             "the latest result has no detection to teach from: nothing was added")
        d = dets[index]
        crop = np.ascontiguousarray(crop_of(image, d.box, self.pad))
        return crop, str(d.detected_as or d.label), f"live-{time.strftime('%Y%m%d-%H%M%S')}.jpg"

    def remove(self, body: dict) -> Reply:
        file = body.get("example")
        if set(body) != {"example"} or not isinstance(file, str) or self._example(file) is None:
            raise UsageError('send {"example": "label/name.jpg"}, as GET /api/teach lists them')
        taught.remove_example(self.folder, file)   # type: ignore[arg-type]
        return Reply(response(200, JSON, json.dumps({"done": True, "value": file, "message":
                                                     f"{file} removed from the taught set"}).encode()))


def refused(why: str) -> Reply:
    return Reply(response(400, JSON, json.dumps({"done": False, "message": why, "value": None}).encode()))
