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
from edgecam.sinks.overlay import font
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


SIZES = [(480, 270), (768, 432), (1920, 1080)]
YELLOW = (0, 255, 255)


@pytest.fixture(scope="module")
def still(media) -> np.ndarray:
    """Frame 150 of one-by-one-person-detection.mp4: a person at the table, a bright wall."""
    cap = cv2.VideoCapture(str(media / "one-by-one-person-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 150)
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (432, 768, 3)
    return frame


def boxes(size, *fractions) -> list:
    """Detections with boxes given in fractions of a frame of ``size``: (label, class id, id, box)."""
    w, h = size
    return [Detection(cid, label, 0.87, (x1 * w, y1 * h, x2 * w, y2 * h), id=tid)
            for label, cid, tid, (x1, y1, x2, y2) in fractions]


# a person at the top left, where the HUD has always been; a car whose label sits right of
# the door line's top end, where the door's caption has always been
CROWD = (("person", 0, 3, (0.03, 0.07, 0.18, 0.70)), ("car", 2, 7, (0.47, 0.04, 0.70, 0.40)))
HUD = ["ssd_mobilenet_v1  300px", "  9.8 FPS   inference  45.1 ms"]   # overlay.hud_lines' shape


def drawn(still, size, detections, rules=None, shot: str = ""):
    """``still`` at ``size`` with ``detections``, the door line (or ``rules``) and the HUD drawn:
    the image and where each piece went. Saved as /tmp/ov_SHOT_WxH.png when ``shot`` is named,
    to be looked at."""
    from edgecam.sinks.overlay import render
    image = cv2.resize(still, size, interpolation=cv2.INTER_AREA)
    rules = rules or Rules([Line.parse("0.45,0,0.45,1,door", 0)], [], size)
    layout = render(image, Result(150, 15.0, "test", 1.0, "detect", detections=detections), HUD, rules.texts())
    if shot:
        cv2.imwrite(f"/tmp/ov_{shot}_{size[0]}x{size[1]}.png", image)
    return image, layout


def ink_rows(image, rect, ink) -> list:
    """The heights of the runs of rows inside ``rect`` that hold ``ink`` pixels (a mask function
    of the BGR crop): one run per line of text, its height the text's in pixels."""
    x1, y1, x2, y2 = rect
    rows = ink(image[y1:y2, x1:x2].astype(int)).any(axis=1)
    runs, n = [], 0
    for r in list(rows) + [False]:
        if r:
            n += 1
        elif n:
            runs, n = runs + [n], 0
    return runs


def score_columns(rect, before: str, text: str, f) -> tuple:
    """The part of a label's ``rect`` holding ``text``, which follows ``before`` on it."""
    x = rect[0] + f.pad + cv2.getTextSize(before, cv2.FONT_HERSHEY_SIMPLEX, f.scale, f.thick)[0][0]
    return (x, rect[1], x + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, f.scale, f.thick)[0][0], rect[3])


def black(c):   # a label's text on its class colour
    return c.max(axis=2) < 90


def yellow(c):  # a caption's text on its dark panel
    return (c[..., 0] < 120) & (c[..., 1] > 170) & (c[..., 2] > 170)


def pale(c):    # the HUD's text (220, 255, 220) on its dark panel
    return (c[..., 1] > 190) & (c[..., 0] > 150) & (c[..., 2] > 150)


def test_text_is_readable_at_480_px_and_not_huge_at_1080p(still):
    """Capitals at least 10 px high on a 480x270 frame and at most 2.2 % of a 1080p frame's
    height, growing with the frame: measured in the drawn pixels of a label's score ("87" of
    "car #7 87%": OpenCV 4.x's "#" and "%" reach below the baseline), the door's caption ("door:
    in 0 out 0") and the HUD's second line (neither has a descender)."""
    heights = {}
    for size in SIZES:
        image, layout = drawn(still, size, boxes(size, *CROWD), shot="text")
        label = ink_rows(image, score_columns(layout.labels[1], "car #7 ", "87", font(image)), black)
        caption = ink_rows(image, layout.captions[0], yellow)
        hud = ink_rows(image, layout.hud, pale)
        assert len(label) == len(caption) == 1 and len(hud) == 2, (size, label, caption, hud)
        heights[size] = (label[0], caption[0], hud[1])
    print("ink heights (label, caption, HUD) px:", heights)
    assert all(h >= 10 for h in heights[(480, 270)]), heights
    assert all(14 <= h <= 0.022 * 1080 for h in heights[(1920, 1080)]), heights
    assert all(a < b for a, b in zip(heights[(480, 270)], heights[(1920, 1080)])), heights


def overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.mark.parametrize("size", SIZES)
def test_hud_and_captions_never_cover_a_label(still, size):
    """With a person's label where the HUD sits and a car's where the door's caption sits, both
    move: neither touches any label or box top, and the caption stays beside its line."""
    image, layout = drawn(still, size, boxes(size, *CROWD), shot="crowd")
    taken = layout.labels + layout.keep
    assert not any(overlaps(layout.hud, r) for r in taken), (layout.hud, taken)
    assert not (layout.hud[0] < 0.02 * size[0] and layout.hud[1] < 0.02 * size[1])   # it left the top left
    caption, x = layout.captions[0], 0.45 * size[0]
    assert not any(overlaps(caption, r) for r in taken + [layout.hud] + layout.tags), (caption, taken)
    assert min(abs(caption[0] - x), abs(caption[2] - x)) <= 0.02 * size[0], (caption, x)


@pytest.mark.parametrize("size", SIZES)
def test_with_nothing_in_the_way_hud_and_caption_stay_where_they_always_were(still, size):
    """Top-left for the HUD; right of the door line's top end for its caption."""
    _, layout = drawn(still, size, boxes(size, ("person", 0, 4, (0.55, 0.45, 0.7, 0.95))))
    assert layout.hud[0] < 0.02 * size[0] and layout.hud[1] < 0.02 * size[1]
    caption = layout.captions[0]
    assert 0 < caption[0] - 0.45 * size[0] < 0.02 * size[0], caption
    if layout.hud[2] <= caption[0]:
        assert caption[1] == 0, caption
    else:   # OpenCV 4.x's face is 25 % wider: at 480x270 its HUD reaches past the door line,
        assert caption[3] == size[1], caption     # and the caption takes the line's other end


def test_where_every_place_is_taken_labels_are_drawn_over_everything(still):
    """A box in each corner and along the whole door line: the HUD and the caption must sit
    on something, and every label is still whole on top (its colour, around its black text)."""
    size = (480, 270)
    crowd = [("person", 0, i, box) for i, box in enumerate(
        [(0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.0, 0.55, 0.5, 0.97), (0.5, 0.55, 1.0, 0.97),
         (0.3, 0.3, 0.6, 0.6), (0.3, 0.8, 0.6, 1.0)], 1)]
    image, layout = drawn(still, size, boxes(size, *crowd), shot="full")
    assert any(overlaps(layout.hud, r) for r in layout.keep)
    for x1, y1, x2, y2 in layout.labels:
        crop = image[y1:y2, x1:x2].astype(int)
        colour = (np.abs(crop - (56, 56, 255)).max(axis=2) <= 2).mean()
        assert colour > 0.6 and black(crop).any(), ((x1, y1, x2, y2), colour)


# lines drawn each way, a walk across each the way it counts as in, and where "in" is
WAYS = [("0.45,0,0.45,1", (100, 200), (500, 200), (1, 0)),      # drawn top to bottom: left to right
        ("0.45,1,0.45,0", (500, 200), (100, 200), (-1, 0)),     # bottom to top: right to left
        ("0,0.5,1,0.5", (300, 330), (300, 30), (0, -1)),        # left to right: upwards
        ("1,0.5,0,0.5", (300, 30), (300, 330), (0, 1))]         # right to left: downwards


@pytest.mark.parametrize("spec, start, end, way", WAYS)
def test_the_arrow_points_to_the_side_that_counts_in(still, spec, start, end, way):
    """A person walked across a line the way Rules counts as ``in``; the arrow the overlay draws
    for that line has its tip, and its "in" tag, on the side the person walked to (the sign of
    geometry.side that rules.py counts as in), pointing the way they walked, drawn in yellow."""
    from edgecam.track.geometry import side
    size = (W, H)
    rules = Rules([Line.parse(spec + ",door", 0)], [], size)
    assert walk(rules, 1, "person", start, end) == [{"event": "cross", "line": "door", "direction": "in"}]
    image, layout = drawn(still, size, [], rules, shot="arrow" if spec == WAYS[0][0] else "")
    (p1, p2), ((tx, ty), (hx, hy)) = rules.texts()[0][1], layout.arrows[0]
    assert side(p1, p2, (hx, hy)) < 0 and side(p1, p2, end) < 0 < side(p1, p2, start)
    assert (hx - tx) * way[0] + (hy - ty) * way[1] > 0.9 * np.hypot(hx - tx, hy - ty)
    tag = layout.tags[0]
    assert side(p1, p2, ((tag[0] + tag[2]) / 2, (tag[1] + tag[3]) / 2)) < 0
    tip = image[int(hy) - 3:int(hy) + 4, int(hx) - 3:int(hx) + 4].astype(int)
    assert (np.abs(tip - YELLOW).max(axis=2) < 60).any()


@pytest.mark.parametrize("size", SIZES)
def test_a_zone_caption_moves_off_a_label_in_its_corner(still, size):
    """A person's label in the zone's top-left corner, where its caption sits: the caption goes
    to the next free place, still on the zone's bounding box."""
    yard = Zone.parse({"name": "yard", "points": [[0.55, 0.2], [0.95, 0.2], [0.95, 0.8], [0.55, 0.8]]}, 0)
    rules = Rules([], [yard], size)
    _, layout = drawn(still, size, boxes(size, ("person", 0, 5, (0.55, 0.25, 0.7, 0.75))), rules, shot="zone")
    caption, (w, h) = layout.captions[0], size
    assert not any(overlaps(caption, r) for r in layout.labels + layout.keep + [layout.hud]), caption
    assert 0.55 * w - 1 <= caption[0] and caption[2] <= 0.95 * w + 1 and 0.2 * h - 40 <= caption[1] <= 0.8 * h
