"""The window / kiosk display (OpenCV HighGUI), a sink. It is driven from one thread: the
runner's main loop, in both modes. ``fullscreen`` is the kiosk: no decorations, no toolbar,
the frame letterboxed onto the whole screen (also on a bare X server without a window
manager, as kiosks often run), the mouse pointer hidden (with `unclutter`). Keys become
intents: q/Esc (or closing the window) quit, space pause, o overlay, s snapshot, m model."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
from typing import List, Optional, Tuple

import cv2
import numpy as np

from edgecam.errors import OutputError
from edgecam.sinks.base import NEXT_MODEL, OVERLAY, PAUSE, QUIT, SNAPSHOT, FrameInfo, Intent, Sink

log = logging.getLogger("edgecam")

TITLE = "edgecam"
CLOSED = -2                      # show(): the window was closed with the mouse
KEYS = {27: QUIT, ord("q"): QUIT, CLOSED: QUIT, ord(" "): PAUSE, ord("o"): OVERLAY,
        ord("s"): SNAPSHOT, ord("m"): NEXT_MODEL}


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_window(display: str) -> Optional["Window"]:
    """The window for ``output.display`` (window, fullscreen), or None for ``none`` and, with a
    warning, where there is no screen."""
    if display == "none":
        return None
    if not has_screen():
        log.warning("no screen (DISPLAY is not set): running without a window (--display none)")
        return None
    return Window(fullscreen=display == "fullscreen")


class Window(Sink):
    def __init__(self, fullscreen: bool = False, title: str = TITLE):
        if not has_screen():
            raise OutputError("cannot open a window: no screen (DISPLAY is not set); "
                              "use --display none, or --web 0.0.0.0:8080 to watch in a browser")
        self.title = title
        # GUI_NORMAL: no Qt toolbar or status bar, just the picture
        size = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO if fullscreen else cv2.WINDOW_AUTOSIZE
        flags = size | cv2.WINDOW_GUI_NORMAL
        self.screen = screen_size() if fullscreen else None
        try:
            cv2.namedWindow(title, flags)
            if fullscreen:
                cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
                if self.screen:   # without a window manager nobody else makes it fill the screen
                    cv2.moveWindow(title, 0, 0)
                    cv2.resizeWindow(title, *self.screen)
        except cv2.error as exc:
            raise OutputError("cannot open a window: this OpenCV has no GUI support "
                              f"({str(exc).strip()[:80]})") from None
        self.fullscreen = fullscreen
        self._unclutter = _hide_cursor() if fullscreen else None
        self._intents: List[Intent] = []

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self._key(self.show(image))

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        if image is not None:
            self._key(self.show(image))

    def _key(self, key: int) -> None:
        if key in KEYS:
            self._intents.append(Intent(KEYS[key]))

    def intents(self) -> List[Intent]:
        out, self._intents = self._intents, []
        return out

    def show(self, image: np.ndarray) -> int:
        """Show a frame; return the key pressed, -1 for none, CLOSED when the window was closed."""
        if self.screen:
            image = letterbox(image, self.screen)
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return CLOSED
        except cv2.error:
            return CLOSED
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


def letterbox(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height), centred on black."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    canvas = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    canvas[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas


def screen_size() -> Optional[Tuple[int, int]]:
    """The X screen's size in pixels (libX11), or None (Wayland without X, no libX11)."""
    try:
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    for fn in (x11.XDefaultScreen, x11.XCloseDisplay):
        fn.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = x11.XDefaultScreen(display)
        size = (int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen)))
    finally:
        x11.XCloseDisplay(display)
    return size if min(size) > 0 else None
