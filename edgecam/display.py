"""The window / kiosk display (OpenCV HighGUI). Must be driven from one thread (the live
output loop, or file mode's writer). ``fullscreen`` is the kiosk: no decorations, no
toolbar, the frame scaled to the screen, the mouse pointer hidden (with `unclutter`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional

import cv2
import numpy as np

from edgecam.errors import OutputError

TITLE = "edgecam"


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Window:
    def __init__(self, fullscreen: bool = False, title: str = TITLE):
        if not has_screen():
            raise OutputError("cannot open a window: no screen (DISPLAY is not set); "
                              "use --display none, or --web 0.0.0.0:8080 to watch in a browser")
        self.title = title
        # GUI_NORMAL: no Qt toolbar or status bar, just the picture
        flags = (cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO if fullscreen else cv2.WINDOW_AUTOSIZE) | cv2.WINDOW_GUI_NORMAL
        try:
            cv2.namedWindow(title, flags)
            if fullscreen:
                cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        except cv2.error as exc:
            raise OutputError(f"cannot open a window: this OpenCV has no GUI support ({str(exc).strip()[:80]})") from None
        self.fullscreen = fullscreen
        self._unclutter = _hide_cursor() if fullscreen else None

    def show(self, image: np.ndarray) -> int:
        """Show a frame; return the key pressed (or -1)."""
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return 27  # window closed with the mouse: same as Esc
        except cv2.error:
            return 27
        return key & 0xFF if key >= 0 else -1

    def close(self) -> None:
        if self._unclutter is not None:
            self._unclutter.terminate()
            self._unclutter.wait(timeout=2)
            self._unclutter = None
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def _hide_cursor() -> Optional[subprocess.Popen]:
    """Kiosk: hide the mouse pointer while edgecam runs (Debian package `unclutter`); best effort."""
    if not shutil.which("unclutter"):
        return None
    return subprocess.Popen(["unclutter", "-idle", "0", "-root"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
