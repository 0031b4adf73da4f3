"""What the picture says is readable (issue 19 item 4): counts split by label where a line or
zone counted more than one; text sized from the frame; the HUD and the captions never under an
object's label; each line's arrow on its ``in`` side. Counted by edgecam.track.rules from
walked tracks; drawn on real frames of one-by-one-person-detection.mp4 (768x432) and their
480x270 and 1920x1080 resizes, and measured in pixels or in the rectangles the drawing used."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecam.model.postprocess import Detection
from edgecam.model.results import Result
from edgecam.track.rules import Line, Rules, Zone

W, H = 640, 360


def walk(rules: Rules, tid: int, label: str, start, end, steps: int = 10) -> list:
    """Track ``tid`` walked in a straight line from ``start`` to ``end`` (pixels): its events."""
    events = []
    for i in range(steps + 1):
        p = (start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
        events += rules.update(tid, label, p, i / 10)
    return events


def test_captions_split_counts_by_label_only_where_several_were_counted():
    door = Line.parse("0.45,0,0.45,1,door", 0)
    gate = Line.parse("0,0.5,1,0.5,gate", 1)
    yard = Zone.parse({"name": "yard", "points": [[0.6, 0.6], [0.95, 0.6], [0.95, 0.95], [0.6, 0.95]]}, 0)
    rules = Rules([door, gate], [yard], (W, H))
    for tid in (1, 2):                                         # two people left to right through the door
        walk(rules, tid, "person", (100, 100 + 20 * tid), (500, 100 + 20 * tid))
    for tid, label in ((3, "car"), (4, "car"), (5, "person")):  # two cars and a person up through the gate
        walk(rules, tid, label, (40 + 30 * tid, 340), (40 + 30 * tid, 50))
    for tid, label in ((6, "car"), (7, "car"), (8, "person")):  # and into the yard, where they stay
        walk(rules, tid, label, (500, 200), (450 + 10 * tid, 300))
    captions = {kind + ":" + text.split(":")[0]: text for kind, _, text in rules.texts()}
    assert captions == {"line:door": "door: in 2 out 0",
                        "line:gate": "gate: in 3 (car 2, person 1) out 0",
                        "zone:yard": "yard: 3 in, 3 entered (car 2, person 1)"}
    walk(rules, 9, "person", (60, 50), (60, 340))             # a person down through the gate: out
    assert rules.texts()[1][2] == "gate: in 3 (car 2, person 1) out 1 (person 1)"
