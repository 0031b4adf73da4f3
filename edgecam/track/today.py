"""Today's totals per line, zone and label: since local midnight, across restarts. Seeded at
the start from the history (edgecam/store/), counted from the events as they come (the
inference thread), read by /status, the overlay, MQTT and Prometheus (other threads); back to
zero at local midnight."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

Key = Tuple[str, str, str]      # (line or zone, label, in | out | entered)
CAPTION = re.compile(r"(.*): (?:in \d|\d+ in, )")   # rules.py's captions: "door: in 5 ...", "desk: 1 in, ..."


def count_key(event: dict) -> Optional[Key]:
    """What an event adds to: a crossing to its line and direction, an entry to its zone."""
    if event.get("event") == "cross" and event.get("line"):
        return str(event["line"]), str(event.get("label")), str(event.get("direction"))
    if event.get("event") == "enter" and event.get("zone"):
        return str(event["zone"]), str(event.get("label")), "entered"
    return None


class Today:
    def __init__(self, seed: Optional[Mapping[Key, int]] = None, day: Optional[dt.date] = None):
        self.lock = threading.Lock()
        self.day = day or dt.date.today()
        self.counts: Dict[Key, int] = dict(seed or {})

    def _roll(self) -> None:
        today = dt.date.today()
        if today != self.day:
            self.day, self.counts = today, {}

    def add(self, event: dict) -> Optional[Key]:
        key = count_key(event)
        if key is not None:
            with self.lock:
                self._roll()
                self.counts[key] = self.counts.get(key, 0) + 1
        return key

    def current_day(self) -> dt.date:
        """The local day the totals are of (after midnight: the new day, the totals at zero)."""
        with self.lock:
            self._roll()
            return self.day

    def totals(self) -> dict:
        """``{line: {"in", "out", "by_label": {label: {"in", "out"}}}, zone: {"entered", "by_label"}}``."""
        with self.lock:
            self._roll()
            items = list(self.counts.items())
        out: dict = {}
        for (place, label, what), n in sorted(items):
            if what == "entered":
                z = out.setdefault(place, {"entered": 0, "by_label": {}})
                z["entered"] += n
                z["by_label"][label] = z["by_label"].get(label, 0) + n
            else:
                line = out.setdefault(place, {"in": 0, "out": 0, "by_label": {}})
                line[what] = line.get(what, 0) + n
                line["by_label"].setdefault(label, {"in": 0, "out": 0})[what] += n
        return out

    def of(self, name: str, zone: bool) -> dict:
        """One line's (``today_in``, ``today_out``) or zone's (``today_entered``) totals."""
        t = self.totals().get(name, {})
        if zone:
            return {"today_entered": t.get("entered", 0)}
        return {"today_in": t.get("in", 0), "today_out": t.get("out", 0)}


def with_today(scene: Sequence[Tuple[str, list, str]], totals: dict) -> List[Tuple[str, list, str]]:
    """The overlay's lines and zones, each caption followed by today's totals."""
    out = []
    for kind, points, caption in scene:
        match = CAPTION.match(caption)
        t = totals.get(match.group(1), {}) if match else {}
        more = f"today {t.get('entered', 0)}" if kind == "zone" else f"today in {t.get('in', 0)} out {t.get('out', 0)}"
        out.append((kind, points, f"{caption}; {more}"))
    return out
