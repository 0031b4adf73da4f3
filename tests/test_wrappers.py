"""Sources that wrap a source (edgecam/sources/wrapper.py) say what the source they wrap says,
again after every reopen: a camera awaited, flipped and turned, takes the real camera's name,
size and timeouts when it opens, and its failures' reasons while it does not. Real footage
stands in for the camera."""

from __future__ import annotations

import pytest

from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.sources.opening import open_file
from edgecam.sources.transform import Orientation, Oriented
from edgecam.sources.waiting import WaitingCamera
from edgecam.sources.wrapper import DECLARED

CLIP = "bottle-detection.mp4"    # 640x360


def test_a_camera_awaited_and_turned_takes_its_cameras_attributes_when_it_opens(media):
    tries = []

    def opener():
        tries.append(1)
        if len(tries) == 1:
            raise SourceError("still no camera at /dev/video0")
        return open_file(str(media / CLIP), loop=True)

    cam = WaitingCamera(SourceConfig(uri="/dev/video0", width=1280, height=720), opener, "no camera at /dev/video0")
    turned = Oriented(cam, Orientation.of("none", "90"))
    assert (turned.waiting, turned.error, turned.name, turned.size) == (True, "no camera at /dev/video0",
                                                                         "/dev/video0", (720, 1280))
    assert turned.live and turned.reconnectable and turned.read() is None
    with pytest.raises(SourceError):
        turned.reopen()
    assert turned.waiting and turned.error == "still no camera at /dev/video0"   # the new reason, through both

    turned.reopen()
    assert not turned.waiting and turned.name == str(media / CLIP) and turned.size == (360, 640)
    assert turned.fps == cam.inner.fps and turned.read_timeout_s == cam.inner.read_timeout_s
    frame = turned.read()
    assert frame is not None and frame.image.shape == (640, 360, 3)     # turned a quarter
    turned.close()


def test_a_wrapper_copies_every_declared_attribute(media):
    source = open_file(str(media / CLIP))
    turned = Oriented(source, Orientation.of("h", "0"))
    assert {k: getattr(turned, k) for k in DECLARED} == {k: getattr(source, k) for k in DECLARED}
    turned.close()
