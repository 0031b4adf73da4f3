"""Teach it on the device (edgecam/teach/), for real: the embedding models derived from the
published V2 and V3-Small, checked against the full models' intermediate tensors on the media's
photos; taught sets built at test time from the shared clips (`edgecam teach --add LABEL --from
VIDEO`), never stored in the project; the window of one-by-one-person-detection.mp4 suppressed
(not-tv) or relabelled on a short cut of the clip; the bottles' frame state on a cut of
bottle-detection.mp4 with a change in and out; a set changed while in use; bad sets refused in
one sentence, exit 2."""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import run_edgecam, write_clip

from edgecam.config import load_config
from edgecam.errors import UsageError
from edgecam.costlens import embedding, tflite_file
from edgecam.model.preprocess import preprocess
from edgecam.model.engine import Engine
from edgecam.provision import catalog
from edgecam.provision.embed_cache import ensure
from edgecam.teach import taught
from edgecam.teach.embedder import Embedder
from edgecam.teach.stage import RELOAD_S, Watched

WALK, BOTTLES = "one-by-one-person-detection.mp4", "bottle-detection.mp4"
WINDOW = "0,0.01,0.143,0.41"            # the dark window the SSD calls `tv`, in fractions of the frame
PHOTOS = ("grace_hopper.bmp", "cat.bmp", "parrot.jpg", "kite_and_cold.jpg")


@pytest.fixture(scope="module")
def config(models_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("teach") / "config.yaml"
    path.write_text(f"model:\n  dir: {models_dir}\n")
    return path


def teach(config: Path, *args):
    return run_edgecam("teach", *args, "--config", config, timeout=300)


@pytest.mark.parametrize("name,size", [("v2", 1280), ("v3", 1024)])
def test_embedding_model_gives_the_full_models_pooled_features(models_dir, media, name, size, runtime):
    full = catalog.locate(name, None, str(models_dir)).path
    derived = embedding.derive(tflite_file.read(full.read_bytes()))
    out = full.parent / f"{name}.test.embed.tflite"
    out.write_bytes(tflite_file.write(derived.model))
    assert derived.size == size and derived.dropped_ops >= 3          # logits conv, squeeze, softmax
    assert out.stat().st_size < full.stat().st_size - 1000 * size     # the 1001-way weights are gone
    spec = Engine(out, 1, runtime).input
    photos = [preprocess(cv2.imread(str(media / p)), spec)[0] for p in PHOTOS]
    with warnings.catch_warnings():        # preserve_all_tensors: "intended for debugging purposes only"
        warnings.simplefilter("ignore")
        assert embedding.check(full, out, derived.tensor, runtime, photos) == 0.0
    assert Engine(out, 1, runtime).outputs[0].shape[-1] == size


@pytest.fixture(scope="module")
def window_set(config, media, tmp_path_factory) -> Path:
    """not-tv from five crops of the window, from frames outside the cut the tests run on."""
    folder = tmp_path_factory.mktemp("sets") / "window"
    r = teach(config, folder, "--add", "not-tv", "--from", media / WALK, "--frames", "600,700,850,1000,1100",
              "--box", WINDOW)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not-tv" in r.stdout and "5/5 right" in r.stdout, r.stdout
    assert (folder / taught.CACHE_JSON).is_file() and len(list((folder / "not-tv").glob("*.png"))) == 5
    return folder


@pytest.fixture(scope="module")
def walk_cut(media, tmp_path_factory) -> Path:
    return write_clip(media / WALK, tmp_path_factory.mktemp("cut") / "walk.mp4", 300)


def objects(stdout: str) -> dict:
    """The summary's "objects per label (tracked): person: 2, tv: 1" as a dict."""
    line = next((line for line in stdout.splitlines() if "objects per label" in line), "")
    return {k.strip(): int(v) for k, v in re.findall(r"([\w -]+?): (\d+)", line.split("):", 1)[-1])}


def test_not_tv_suppresses_the_window_and_keeps_the_people(models_dir, window_set, walk_cut, tmp_path):
    run = ["--model", "v1_ssd", "--model-dir", models_dir, "--source", walk_cut, "--display", "none"]
    plain = run_edgecam(*run)
    assert plain.returncode == 0 and objects(plain.stdout).get("tv") == 1, plain.stdout
    taught_run = run_edgecam(*run, "--teach", window_set, "--json", tmp_path / "out.jsonl")
    assert taught_run.returncode == 0, taught_run.stderr[-2000:]
    assert "tv" not in objects(taught_run.stdout), taught_run.stdout
    assert objects(taught_run.stdout).get("person") == objects(plain.stdout).get("person") >= 1
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert not any(d["label"] == "tv" for r in rows for d in r["detections"])
    embedded = int(re.search(r"embeddings\): (\d+) embedded", taught_run.stdout).group(1))
    assert embedded < len(rows) / 3, taught_run.stdout                 # not every frame: every teach.every_s


def test_a_plain_label_relabels_and_keeps_the_detectors(models_dir, window_set, walk_cut, tmp_path):
    folder = tmp_path / "relabel"
    (folder / "window").mkdir(parents=True)
    for png in (window_set / "not-tv").glob("*.png"):
        (folder / "window" / png.name).write_bytes(png.read_bytes())
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", walk_cut, "--display", "none",
                    "--teach", folder, "--json", tmp_path / "out.jsonl", "--events", tmp_path / "events.jsonl")
    assert r.returncode == 0, r.stderr[-2000:]
    assert objects(r.stdout).get("window") == 1 and "tv" not in objects(r.stdout), r.stdout
    taught_ones = [d for line in (tmp_path / "out.jsonl").read_text().splitlines()
                   for d in json.loads(line)["detections"] if d["label"] == "window"]
    assert taught_ones and all(d["detected_as"] == "tv" and 0.5 < d["taught"] <= 1.0 for d in taught_ones)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "new" and e["label"] == "window" and e["detected_as"] == "tv" for e in events)


def test_bottles_frame_state(config, models_dir, media, tmp_path):
    """Taught from 5 frames per state outside the cut; the cut (frames 480-879) holds two
    changes: the left and middle bottles lifted out near frame 526, all three back near 830
    (the middle one back at 676: still one missing)."""
    folder = tmp_path / "bottles"
    for label, frames in (("all", "50,150,400,1120,1150"), ("missing", "250,300,320,1000,1030")):
        r = teach(config, folder, "--add", label, "--from", media / BOTTLES, "--frames", frames)
        assert r.returncode == 0, r.stderr[-2000:]
    cut = write_clip(media / BOTTLES, tmp_path / "cut.mp4", 400, first=480)
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", cut, "--display", "none",
                    "--teach-frame", folder, "--json", tmp_path / "out.jsonl", "--events", tmp_path / "events.jsonl")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    changes = (526 - 480, 830 - 480)
    scored = [r for r in rows if min(abs(r["frame"] - c) for c in changes) > 15]
    right = sum(r["state"] == ("missing" if changes[0] <= r["frame"] < changes[1] else "all") for r in scored)
    assert right >= 0.95 * len(scored), f"{right}/{len(scored)}"
    states = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "state"]
    assert [s["state"] for s in states][:3] == ["all", "missing", "all"], states


def test_a_set_changed_while_in_use(config, window_set, media, tmp_path):
    """An example added is used at the next look (RELOAD_S); a bad file added is refused and
    the last good set stays."""
    folder = tmp_path / "live"
    (folder / "not-tv").mkdir(parents=True)
    for png in sorted((window_set / "not-tv").glob("*.png"))[:2]:
        (folder / "not-tv" / png.name).write_bytes(png.read_bytes())
    cfg = load_config(config)
    watched = Watched(str(folder), "v2", Embedder(ensure(cfg, "v2")))
    assert len(watched.set.entries) == 2
    image = cv2.imread(str(sorted((window_set / "not-tv").glob("*.png"))[2]))
    taught.add_example(folder, "not-tv", image, "added.png")
    time.sleep(RELOAD_S + 0.1)
    assert watched.fresh() and len(watched.set.entries) == 3
    (folder / "not-tv" / "broken.jpg").write_bytes(b"not a picture")
    time.sleep(RELOAD_S + 0.1)
    assert not watched.fresh() and len(watched.set.entries) == 3 and "broken.jpg" in watched.refused
    taught.remove_example(folder, "not-tv/broken.jpg")
    before = taught.stamp(folder)
    for label, bad in (("../up", image), ("not-tv", np.zeros((0, 5, 3), np.uint8)), ("not-tv", np.zeros((9, 9)))):
        with pytest.raises(UsageError):                # as the review page would: refused, nothing written
            taught.add_example(folder, label, bad, "bad.png")
    assert taught.stamp(folder) == before
    with pytest.raises(Exception, match="not an example"):
        taught.remove_example(folder, "../escape.png")
    assert np.isfinite(watched.set.margins).all()


def test_bad_sets_are_one_sentence_and_exit_2(config, models_dir, window_set, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "nolabel" / "cat").mkdir(parents=True)
    (tmp_path / "notimage" / "cat").mkdir(parents=True)
    (tmp_path / "notimage" / "cat" / "notes.txt").write_text("hello")
    (tmp_path / "broken" / "cat").mkdir(parents=True)
    (tmp_path / "broken" / "cat" / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    cases = {"empty": "is empty", "nolabel": "has no image", "notimage": "is not an image file",
             "broken": "is not an image edgecam can read"}
    for name, message in cases.items():
        r = teach(config, tmp_path / name)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    other = tmp_path / "other.yaml"
    other.write_text(f"model:\n  dir: {models_dir}\nteach:\n  model: v3\n")
    r = run_edgecam("--config", other, "--model", "v1_ssd", "--source", tmp_path / "none.mp4", "--teach", window_set)
    assert r.returncode == 2 and "was built with the embeddings of v2, not v3" in r.stderr, r.stderr
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--teach-region", "0,0,1")
    assert r.returncode == 2 and "--teach-frame" in r.stderr, r.stderr
