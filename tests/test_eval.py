"""`edgecam eval`: counts scored against the hand-written truth of both shared clips (in
tests/truth/, from MEDIA.md), by a real run of v1_ssd at the defaults we ship; the scoring
itself on runs' files; bad truth files refused in one sentence, exit 2."""

import json
from pathlib import Path

import pytest

from helpers import run_edgecam
from edgecam.track.score import match, objects

TRUTH = Path(__file__).resolve().parent / "truth"


def edgecam_eval(*args):
    return run_edgecam("eval", *args, timeout=600)


@pytest.fixture(scope="module")
def person_score(models_dir, media):
    r = edgecam_eval(TRUTH / "one-by-one-person-detection.yaml", "--json", "--model", "v1_ssd",
                     "--model-dir", models_dir, "--source", media / "one-by-one-person-detection.mp4")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def bottle_score(models_dir, media):
    r = edgecam_eval(TRUTH / "bottle-detection.yaml", "--json", "--model", "v1_ssd", "--allow", "bottle",
                     "--model-dir", models_dir, "--source", media / "bottle-detection.mp4")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_person_clip_every_crossing_counted(person_score):
    """Door: in 5 (one person appears already past it, one crosses 3 frames after appearing);
    exit: in 6; nothing counted the wrong way."""
    s = person_score
    assert s["lines"]["door"]["in"] == {"truth": 5, "counted": 5, "matched": 5, "missed": 0, "false": 0}
    assert s["lines"]["exit"]["in"] == {"truth": 6, "counted": 6, "matched": 6, "missed": 0, "false": 0}
    assert s["lines"]["door"]["out"]["counted"] == s["lines"]["exit"]["out"]["counted"] == 0
    assert s["count_error"] == 0


def test_person_clip_one_id_per_person(person_score):
    person = person_score["objects"]["person"]
    assert person == {"truth": 6, "ids": 6, "matched": 6, "missed": 0, "fragments": 0, "false": 0}
    # the dark window the model calls `tv` at 0.46-0.54 the whole clip: one object, not one per flicker
    assert person_score["objects"].get("tv", {"ids": 0})["ids"] <= 1


def test_bottle_clip_objects_zones_and_line(bottle_score):
    """7 bottle presences, one id each; each zone entered 3 / 2 / 2 times and holding a bottle
    at the end; the motion-blurred crossings counted in the right direction, none false."""
    s = bottle_score
    assert s["objects"]["bottle"] == {"truth": 7, "ids": 7, "matched": 7, "missed": 0, "fragments": 0, "false": 0}
    for zone in ("left", "centre", "right"):
        z = s["zones"][zone]
        assert z["entered"]["missed"] == z["entered"]["false"] == 0, (zone, z)
        assert z["inside_at_end"] == {"truth": 1, "counted": 1}
    line = s["lines"]["middle"]
    assert line["in"]["matched"] == 4 and line["in"]["false"] == 0       # the 4 removals, upward
    assert line["out"]["false"] == 0 and line["out"]["matched"] >= 2      # placements: blurred, honestly
    assert s["count_error"] <= 2


def test_reads_a_runs_files_and_prints_the_table(tmp_path):
    events = [{"event": "new", "id": 1, "label": "person", "frame": 10},
              {"event": "cross", "line": "door", "direction": "in", "id": 1, "label": "person", "frame": 30},
              {"event": "cross", "line": "door", "direction": "in", "id": 1, "label": "person", "frame": 90},
              {"event": "lost", "id": 1, "label": "person", "frame": 100},
              {"event": "new", "id": 2, "label": "person", "frame": 105},
              {"event": "lost", "id": 2, "label": "person", "frame": 150}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "truth.yaml").write_text("frames: 200\nlines:\n  door:\n    in: [[25, 35], [150, 160]]\n"
                                         "objects:\n  person: 1\npresence:\n  person: [[10, 150]]\n")
    r = edgecam_eval(tmp_path / "truth.yaml", "--events", tmp_path / "events.jsonl")
    assert r.returncode == 0, r.stderr
    assert "line door in: truth 2, counted 2, matched 1, missed 1, false 1" in r.stdout
    assert "objects person: truth 1, ids 2, matched 1, missed 0, fragments 1, false 0" in r.stdout
    assert "count error: 2 of 2" in r.stdout


def test_scoring_rules():
    assert match(3, [5, 9], 0).to_json() == {"truth": 3, "counted": 2, "matched": 2, "missed": 1, "false": 0}
    # windows: each matched once, earliest-ending first, with the tolerance
    t = match([[10, 20], [15, 16]], [16, 22], 2)
    assert (t.matched, t.missed, t.false) == (2, 0, 0)
    assert match([[10, 20]], [30], 2).false == 1
    # ids paired one to one by overlap in time; a second id on one presence is a fragment
    o = objects(2, [(0, 50), (60, 100), (0, 200), (500, 510)], [(0, 100), (150, 300)])
    assert (o.matched, o.fragments, o.false, o.missed) == (2, 1, 1, 0)


@pytest.mark.parametrize("text,message", [
    ("- just a list\n", "not a ground-truth file"),
    ("lines:\n  door: {in: -1}\n", "whole number of 0 or more"),
    ("lines:\n  door: {in: [[30, 20]]}\n", "0 <= first <= last"),
    ("lines:\n  door: {at: '0.5,0,1.5,1', in: 1}\n", "between 0 and 1"),
    ("lines:\n  door: {in: 1, sideways: 2}\n", "must be {at:"),
    ("frames: 100\nlines:\n  door: {in: [[90, 120]]}\n", "outside the video"),
    ("crossings: 3\n", "unknown key 'crossings'"),
    ("objects: {person: 2}\npresence: {person: [[0, 10]]}\n", "gives 1 intervals"),
    ("lines: [door\n", "YAML"),
])
def test_bad_truth_is_one_sentence(tmp_path, text, message):
    (tmp_path / "truth.yaml").write_text(text)
    (tmp_path / "events.jsonl").write_text("")
    r = edgecam_eval(tmp_path / "truth.yaml", "--events", tmp_path / "events.jsonl")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_line_the_run_does_not_have_is_refused(tmp_path, models_dir, media):
    (tmp_path / "truth.yaml").write_text("lines:\n  gate: {in: 1}\n")
    r = edgecam_eval(tmp_path / "truth.yaml", "--model", "v1_ssd", "--model-dir", models_dir,
                     "--line", "0.5,0,0.5,1,door", "--source", media / "one-by-one-person-detection.mp4")
    assert r.returncode == 2 and "names 'gate', which the run does not have" in r.stderr
    assert "Traceback" not in r.stderr


def test_windows_outside_the_video_refused_after_reading_its_frames(tmp_path):
    (tmp_path / "frames.jsonl").write_text("".join(json.dumps({"frame": i, "detections": []}) + "\n"
                                                   for i in range(50)))
    (tmp_path / "events.jsonl").write_text("")
    (tmp_path / "truth.yaml").write_text("lines:\n  door: {in: [[40, 60]]}\n")
    r = edgecam_eval(tmp_path / "truth.yaml", "--events", tmp_path / "events.jsonl",
                     "--frames", tmp_path / "frames.jsonl")
    assert r.returncode == 2 and "outside the video (frames 0 to 49)" in r.stderr
