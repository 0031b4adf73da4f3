"""The loopback camera the tests read live: edgecam.loopback, which ships in the package so
that `edgecam bench` can measure live latency against it too (MJPEG over HTTP on 127.0.0.1,
real footage at its own frame rate, stop/restart on the same port, optional frame stamps)."""

from edgecam.bench.loopback import LoopbackCamera, draw_stamp, read_stamp  # noqa: F401
