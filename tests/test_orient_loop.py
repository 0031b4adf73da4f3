"""Small things the anchors' users expect, for real: a video file looped as a camera (--loop),
a mounted camera's picture flipped and turned (--flip, --rotate; the Pi camera through its
libcamera Transform, the Picamera2 stand-in applying it), boxes that follow the picture, and
the TFLite runtime's XNNPACK INFO line kept off the terminal unless --log-level debug."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import run_edgecam, write_clip  # noqa: E402

from edgecam import app  # noqa: E402
from edgecam.config import SourceConfig, load_config  # noqa: E402
from edgecam.model.engine import interpreter_class  # noqa: E402
from edgecam.pipeline import Hooks, StopFlag  # noqa: E402
from edgecam.sources import open_source  # noqa: E402
from edgecam.sources.transform import Orientation  # noqa: E402

FAKE_PICAMERA2 = Path(__file__).parent / "fake_picamera2"
XNNPACK = "Created TensorFlow Lite XNNPACK delegate"


@pytest.fixture(scope="module")
def first_frame(media) -> np.ndarray:
    cap = cv2.VideoCapture(str(media / "bottle-detection.mp4"))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


@pytest.fixture(scope="module")
def short_clip(media, tmp_path_factory) -> Path:
    """The first 12 frames of the bottle footage (0.4 s at 29.8 fps)."""
    return write_clip(media / "bottle-detection.mp4", tmp_path_factory.mktemp("clip") / "short.mp4", 12)


def json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- --loop --------------------------------------------------------------------------------------------

def test_loop_plays_a_file_as_a_camera_with_rising_frame_numbers(models_dir, short_clip, tmp_path):
    out = tmp_path / "loop.jsonl"
    with tempfile_config() as empty:
        cfg = load_config(empty, {"model": {"name": "v1_0.25_128", "dir": str(models_dir)},
                                  "source": {"uri": str(short_clip), "loop": True},
                                  "output": {"display": "none", "json": str(out)}})
    stop, box = StopFlag(), {}
    thread = threading.Thread(target=lambda: box.update(rc=app.run(cfg, hooks=Hooks(), stop=stop)), daemon=True)
    t0 = time.monotonic()
    thread.start()
    end = t0 + 60
    while time.monotonic() < end and not (out.is_file() and len(out.read_text().splitlines()) >= 40):
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive() and box.get("rc") == 0
    frames = [r["frame"] for r in json_lines(out)]
    assert len(frames) >= 40, "a 12-frame clip looped gave fewer than 40 results"
    assert frames == sorted(set(frames)) and frames[-1] >= 36, "frame numbers must keep rising across loops"
    # paced at the file's own rate (about 30 fps): 40 frames take over a second, not a blink
    assert time.monotonic() - t0 > 1.0


class tempfile_config:
    """An empty config file (built-in defaults), as a path."""

    def __enter__(self) -> str:
        import tempfile
        self.f = tempfile.NamedTemporaryFile("w", suffix=".yaml")
        return self.f.name

    def __exit__(self, *exc) -> None:
        self.f.close()


# --- --flip, --rotate ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flip,rotate", [("h", "0"), ("v", "0"), ("both", "0"), ("none", "90"),
                                         ("none", "270"), ("h", "90")])
def test_flip_and_rotate_a_video_source(media, first_frame, flip, rotate):
    src = open_source(SourceConfig(uri=str(media / "bottle-detection.mp4"), flip=flip, rotate=rotate))
    try:
        frame = src.read()
        assert src.live is False and src.fps == pytest.approx(29.83, abs=0.1)   # the file's own, through the wrapper
    finally:
        src.close()
    expected = first_frame
    if flip != "none":
        expected = cv2.flip(expected, {"h": 1, "v": 0, "both": -1}[flip])
    if rotate != "0":
        expected = cv2.rotate(expected, {"90": cv2.ROTATE_90_CLOCKWISE, "270": cv2.ROTATE_90_COUNTERCLOCKWISE}[rotate])
    assert np.array_equal(frame.image, expected)
    assert src.size == (expected.shape[1], expected.shape[0])


def test_orientation_splits_into_isp_flips_and_a_quarter_turn():
    """What the Pi's ISP is asked for (flips, 180 as both) and what is left for OpenCV."""
    assert Orientation.of("none", "180").split() == (Orientation(True, True, 0), Orientation())
    assert Orientation.of("h", "270").split() == (Orientation(False, True, 0), Orientation(quarter=1))
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for flip in ("none", "h", "v", "both"):
        for rotate in ("0", "90", "180", "270"):
            whole = Orientation.of(flip, rotate)
            isp, rest = whole.split()
            assert np.array_equal(rest.apply(isp.apply(img)), whole.apply(img)), (flip, rotate)


def _top(path: Path) -> dict:
    dets = json_lines(path)[0]["detections"]
    assert dets, f"no detection in {path}"
    return max(dets, key=lambda d: d["score"])


@pytest.mark.parametrize("index", [0, 300])
def test_boxes_follow_a_mirrored_picture(models_dir, media, tmp_path, index):
    """SSD on the mirrored picture finds the same object where the mirror put it: the top
    detection's box mirrored equals a box of the --flip h run, within 2% of the width
    (frames of the bottle footage, bottles off the middle)."""
    cap = cv2.VideoCapture(str(media / "bottle-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    path = tmp_path / f"frame{index}.png"
    cv2.imwrite(str(path), cap.read()[1])
    cap.release()
    width = cv2.imread(str(path)).shape[1]
    runs = {}
    for flip in ("none", "h"):
        out = tmp_path / f"{flip}.jsonl"
        r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", path, "--display", "none",
                        "--flip", flip, "--json", out)
        assert r.returncode == 0, r.stderr
        runs[flip] = json_lines(out)[0]["detections"]
    top = _top(tmp_path / "none.jsonl")
    x1, y1, x2, y2 = top["box"]
    mirrored = (width - x2, y1, width - x1, y2)
    assert abs(mirrored[0] - x1) > 20, "the test needs an object off the middle"
    error = min(max(abs(a - b) for a, b in zip(mirrored, d["box"])) for d in runs["h"] if d["label"] == top["label"])
    assert error <= 0.02 * width, (top, runs["h"])


@pytest.fixture
def picamera2(media, monkeypatch):
    monkeypatch.setenv("FAKE_PICAMERA2_VIDEO", str(media / "bottle-detection.mp4"))
    monkeypatch.syspath_prepend(str(FAKE_PICAMERA2))
    for name in ("picamera2", "libcamera"):
        sys.modules.pop(name, None)
    import picamera2
    yield picamera2
    for name in ("picamera2", "libcamera"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("flip,rotate,hflip,vflip", [("h", "0", True, False), ("none", "180", True, True),
                                                     ("v", "90", False, True), ("both", "270", False, False)])
def test_pi_camera_flips_in_its_isp_and_turns_quarters_after(picamera2, first_frame, flip, rotate, hflip, vflip):
    from edgecam.sources.picam import PiCamera2Source
    src = open_source(SourceConfig(uri="picamera2", width=640, height=360, flip=flip, rotate=rotate), 300)
    try:
        assert isinstance(src, PiCamera2Source)        # no OpenCV wrapper: the camera does it
        frame = src.read()
    finally:
        src.close()
    transform = picamera2.opened[-1].camera_config["transform"]
    assert (transform.hflip, transform.vflip, transform.transpose) == (hflip, vflip, False)
    expected = Orientation.of(flip, rotate).apply(first_frame)
    assert np.array_equal(frame.image, expected)
    assert src.size == (expected.shape[1], expected.shape[0])
    small = cv2.resize(Orientation.of(flip, rotate).apply(first_frame), (300, 300), interpolation=cv2.INTER_AREA)
    if rotate in ("90", "270"):   # the lores was scaled before it was turned
        small = Orientation.of(flip, rotate).apply(cv2.resize(first_frame, (300, 300), interpolation=cv2.INTER_AREA))
    assert np.abs(frame.lores.astype(int) - small).mean() < 4


def test_bad_rotate_is_one_sentence():
    r = run_edgecam("--rotate", "45", "--source", "x.mp4")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--rotate" in r.stderr


# --- the XNNPACK INFO line -------------------------------------------------------------------------------

def test_xnnpack_info_line_only_at_debug(models_dir, media, runtime):
    args = ["--model", "v1_0.25_128", "--model-dir", models_dir, "--runtime", runtime,
            "--source", media / "grace_hopper.bmp", "--display", "none"]
    quiet = run_edgecam(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert XNNPACK not in quiet.stderr and "1 frames" in quiet.stdout
    loud = run_edgecam(*args, "--log-level", "debug")
    assert loud.returncode == 0, loud.stderr
    if interpreter_class(runtime)[0] == "ai_edge_litert":   # tflite-runtime 2.14 prints none at all
        assert XNNPACK in loud.stderr, "the runtime printed no XNNPACK line even at debug"


def test_other_runtime_output_still_shows():
    """What the runtime writes to fd 2 besides its INFO line (a real error) is written back."""
    code = ("import os\nfrom edgecam.model.quiet import runtime_chatter_hidden\n"
            "with runtime_chatter_hidden():\n"
            "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nERROR: a real problem\\n')\n")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "ERROR: a real problem\n"
