"""Topic names and payloads (pure). Under the prefix (default ``edgecam/<name>``):

  availability          online / offline (retained; offline is also the last will)
  status                the status summary, JSON, every mqtt.status_s seconds (retained)
  events                each tracking event, JSON (new, lost, cross, enter, leave)
  objects/<label>       how many <label> objects are in view now, a number (retained, on change)
  counts/<line|zone>    a line's in/out or a zone's entered/inside counts, JSON (retained, on change)
  snapshot              the annotated frame of the latest event, JPEG (retained; mqtt.snapshot)
  set/<key>             subscribed: a live control's new value, by its short name (threshold,
                        model, paused, lines, ...) or config key (edgecam.config.CONTROLS)
  set/<key>/result      the answer to a set: {"key", "asked", "value", "done", "message"}
                        (value: what is in force now, changed or not)"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Dict, Iterable, Optional

MAX_SET_PAYLOAD = 4096    # bytes: a live setting's value is a number, a word, a model name or a few lines


def slug(text: str) -> str:
    """``text`` as one topic level and as a Home Assistant id: [a-zA-Z0-9_-] only."""
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", str(text)).strip("_") or "_"


class Topics:
    def __init__(self, prefix: str):
        self.prefix = prefix.strip("/")
        p = self.prefix
        self.availability, self.status, self.events = f"{p}/availability", f"{p}/status", f"{p}/events"
        self.snapshot, self.set_filter = f"{p}/snapshot", f"{p}/set/+"
        self.state = f"{p}/state"                 # the taught frame state (--teach-frame), retained

    def objects(self, label: str) -> str:
        return f"{self.prefix}/objects/{slug(label)}"

    def counts(self, name: str) -> str:
        return f"{self.prefix}/counts/{slug(name)}"

    def set(self, key: str) -> str:
        return f"{self.prefix}/set/{key}"

    def reply(self, key: str) -> str:
        return f"{self.prefix}/set/{key}/result"

    def set_key(self, topic: str) -> Optional[str]:
        """The <key> of ``<prefix>/set/<key>``, else None."""
        head = f"{self.prefix}/set/"
        key = topic[len(head):] if topic.startswith(head) else ""
        return key if key and "/" not in key else None


def encode(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str).encode()


def event_payload(event: dict, camera: str) -> bytes:
    """A tracking event as published: the event as the events file has it, the camera's
    name and the wall-clock time."""
    return encode({**event, "camera": camera, "time": round(time.time(), 3)})


def in_view(detections: Iterable) -> Counter:
    """Objects in view per label."""
    return Counter(d.label for d in detections)


def reply_payload(key: str, asked: str, done: bool, message: str, value) -> bytes:
    return encode({"key": key, "asked": asked, "value": value, "done": done, "message": message})


class RuleCounts:
    """Each line's and zone's counts, kept from the events (as the tracking stage counts them):
    ``apply(event)`` gives the name whose counts changed."""

    def __init__(self, lines: Iterable[str], zones: Iterable[str], before: Optional["RuleCounts"] = None):
        """``before``: the counts until now, kept by name (lines and zones changed while running)."""
        old = before.counts if before is not None else {}
        self.counts: Dict[str, dict] = {n: old[n] if "in" in old.get(n, {}) else {"in": 0, "out": 0, "by_label": {}}
                                        for n in lines}
        self.counts.update({n: old[n] if "entered" in old.get(n, {}) else {"entered": 0, "inside": 0, "by_label": {}}
                            for n in zones})

    def apply(self, event: dict) -> Optional[str]:
        kind, label = event.get("event"), event.get("label", "")
        name = event.get("line") if kind == "cross" else event.get("zone")
        c = self.counts.get(name) if isinstance(name, str) else None
        if c is None:
            return None
        if kind == "cross":
            d = event.get("direction", "in")
            c[d] += 1
            per = c["by_label"].setdefault(label, {"in": 0, "out": 0})
            per[d] += 1
        elif kind == "enter":
            c["entered"] += 1
            c["inside"] += 1
            c["by_label"][label] = c["by_label"].get(label, 0) + 1
        elif kind == "leave":
            c["inside"] = max(0, c["inside"] - 1)
        else:
            return None
        return name
