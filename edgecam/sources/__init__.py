"""Sources: where frames come from, behind one URI (like jetson-inference's videoSource).

  a video file          every frame, in order (``realtime`` paces it at its own rate)   files.py
  an image / a folder   each image once                                               files.py
  0, /dev/video0        a USB/V4L2 webcam through OpenCV (width, height, fps, MJPG)   opencv.py
  rtsp:// http(s)://    a network camera or stream                                    opencv.py
  csi://0               a Jetson CSI camera (nvarguscamerasrc GStreamer pipeline)     opencv.py
  '... ! ... ! appsink' any GStreamer pipeline                                        opencv.py
  picamera2             the Raspberry Pi camera (main + lores streams)                picam.py
  auto                  picamera2 if a Pi camera is attached, else the first V4L2 device

Every one is a :class:`~edgecam.sources.base.Source`: ``read()`` blocks until the next frame
and returns None when it has ended (files) or has stopped delivering (cameras: the live
runner reopens it). Threads live in edgecam/pipeline/.

  base.py       Source (everything a source is asked, declared) and Frame
  opening.py    open_source: the source a URI names, oriented as asked
  wrapper.py    Wrapper: the base of the sources that wrap a source (these two, the bench's)
  transform.py  flips and quarter turns (Oriented)
  waiting.py    a camera waited for (WaitingCamera)

This file only re-exports."""

from edgecam.sources.base import Frame, Source
from edgecam.sources.files import ImageSource, VideoFileSource
from edgecam.sources.opencv import OpenCVCameraSource
from edgecam.sources.opening import open_file, open_source, source_kind
from edgecam.sources.picam import PiCamera2Source

__all__ = ["Frame", "Source", "open_source", "open_file", "source_kind", "VideoFileSource", "ImageSource",
           "OpenCVCameraSource", "PiCamera2Source"]
