"""edgecam: MobileNet V1/V2/V3 (classification and SSD detection) live on a small computer."""

__version__ = "0.1.0"

import os as _os

# Keep FFmpeg's and OpenCV's own chatter (e.g. "moov atom not found") off the terminal:
# edgecam reports a bad video in one sentence of its own.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
