"""Box mapping back to frame pixels, exact for stretch, letterbox and crop."""

import cv2
import numpy as np
import pytest

from edgecam.model.engine import InputSpec
from edgecam.model.preprocess import plan, preprocess


def forward(p, x, y):
    """Where frame pixel (x, y) lands on the model input, normalised to [0, 1]:
    the inverse of the plan's transform, derived from the crop/resize/pad it describes."""
    x0, y0, cw, ch = p.crop
    rw, rh = p.size
    px, py = p.pad
    in_w, in_h = p.in_size
    return (px + (x - x0) * rw / cw) / in_w, (py + (y - y0) * rh / ch) / in_h


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "crop"])
@pytest.mark.parametrize("fw,fh,size", [(640, 360, 300), (1352, 900, 300), (512, 600, 224), (1920, 1080, 224),
                                        (300, 300, 300)])
def test_round_trip_is_exact(mode, fw, fh, size):
    p = plan(fw, fh, size, size, mode)
    t = p.transform
    rng = np.random.default_rng(0)
    x0, y0, cw, ch = p.crop
    for _ in range(50):
        x, y = x0 + rng.uniform(0, cw), y0 + rng.uniform(0, ch)
        u, v = forward(p, x, y)
        assert 0 <= u <= 1 and 0 <= v <= 1
        assert t.ox + u * t.sx == pytest.approx(x, abs=1e-9)
        assert t.oy + v * t.sy == pytest.approx(y, abs=1e-9)


def test_letterbox_pads_equally_and_keeps_aspect():
    p = plan(640, 360, 300, 300, "letterbox")
    assert p.size == (300, 169) and p.pad == (0, 65)
    # the padding bands map outside the frame and are clipped away
    assert p.transform.box_to_frame(0.0, 0.0, 1.0, 1.0) == (0.0, 0.0, 640.0, 360.0)
    assert p.transform.oy < 0


def test_crop_takes_the_centre():
    p = plan(1920, 1080, 224, 224, "crop")
    assert p.crop == (420, 0, 1080, 1080)
    assert p.transform.box_to_frame(0, 0, 1, 1) == (420.0, 0.0, 1500.0, 1080.0)


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "crop"])
def test_a_painted_square_comes_back_where_it_was(mode):
    """Paint a square on a frame, preprocess it, find it on the model input, map it back."""
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:200, 300:420] = 255  # x 300..420, y 100..200
    spec = InputSpec(300, 300, np.uint8, 1 / 128, 128)
    tensor, t = preprocess(frame, spec, mode, cv2.INTER_NEAREST)
    ys, xs = np.nonzero(tensor[0, :, :, 0] > 127)
    box = t.box_to_frame(ys.min() / 300, xs.min() / 300, (ys.max() + 1) / 300, (xs.max() + 1) / 300)
    assert box == pytest.approx((300, 100, 420, 200), abs=2.5)


def test_real_detections_agree_across_resize_modes(models_dir, media):
    """grace_hopper's person box from the real SSD is the same person whatever the resize."""
    from edgecam.config import load_config
    from edgecam.model.loader import load_model
    img = cv2.imread(str(media / "grace_hopper.bmp"))
    boxes = {}
    for mode in ("stretch", "letterbox", "crop"):
        m = load_model(load_config(None, {"model": {"name": "v1_ssd", "dir": str(models_dir)},
                                          "preprocess": {"resize": mode}, "postprocess": {"threshold": 0.4}}))
        person = max((d for d in m.infer(img).detections if d.label == "person"), key=lambda d: d.score)
        boxes[mode] = np.array(person.box)
    for mode in ("letterbox", "crop"):
        a, b = boxes["stretch"], boxes[mode]
        iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        assert inter / union > 0.6, (mode, boxes)
