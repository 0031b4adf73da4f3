"""The ffmpeg command that records: which encoder (H.264 where one works, MPEG-4 Part 2 only
where none does), the container that plays when cut, and the frames' own times kept.

H.264 because browsers play it: Chromium (and so Home Assistant's frontend) refuses MPEG-4
Part 2 in a <video>. The board's hardware encoder comes first where ffmpeg has one
(``h264_v4l2m2m``: a Raspberry Pi 4's VideoCore; a Pi 5 has none), then libx264. ffmpeg
lists encoders it cannot open (h264_v4l2m2m needs the device, h264_nvenc a GPU), so each is
tried for real, once per process and frame size, on a few frames of the very stream edgecam
pipes (mkv.py), before it is chosen; the first that encodes them wins. Only when none does
is the recording MPEG-4 Part 2, with one note saying so.

The input is Matroska with each frame's time (mkv.py); ``-fps_mode passthrough`` (``-vsync``
before ffmpeg 5.1) keeps those times, and millisecond time bases on the way out keep them
exact (ffmpeg otherwise rounds them to a rate it guesses). AVI has no per-frame times: there
ffmpeg repeats or drops frames to the nominal rate, which keeps the wall clock too."""

from __future__ import annotations

import glob
import logging
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from edgecam.sinks import mkv

log = logging.getLogger("edgecam.sinks")

KEYFRAME_S = 0.5          # a key frame (and so a fragment or cluster) every half second
HARDWARE = ("h264_v4l2m2m",)
H264 = (*HARDWARE, "libx264")
FALLBACK = "mpeg4"
PROBE_TIMEOUT_S = 20.0
# libx264: ultrafast with zerolatency (no B-frames, no look-ahead: a frame is in the file as
# soon as it is encoded, so a cut loses only the fragment being written). ultrafast for the
# CPU: 3.9 ms a 720p frame here against superfast's 6.1, for 20% more bits (person footage;
# docs/file-mode.md, scripts/measure-video), on a board where inference wants every core.
CODEC = {"libx264": ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-crf", "23",
                     "-threads", "2"],
         "mpeg4": ["-c:v", "mpeg4", "-q:v", "4", "-threads", "1"]}
_FRAGMENTED = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-video_track_timescale", "1000"]
MUXER = {".mp4": [*_FRAGMENTED, "-f", "mp4"], ".m4v": [*_FRAGMENTED, "-f", "mp4"],
         ".mov": [*_FRAGMENTED, "-f", "mov"], ".mkv": ["-cluster_time_limit", "500", "-f", "matroska"]}
AVI = ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-threads", "1", "-f", "avi"]

_chosen: Dict[Tuple[str, Tuple[int, int]], str] = {}
_noted: List[str] = []


def codec_of(encoder: str) -> str:
    """The codec an encoder writes, as ffprobe names it (h264, mpeg4, mjpeg)."""
    return "h264" if encoder in H264 else encoder


def codec_args(encoder: str, size: Tuple[int, int], fps: float) -> List[str]:
    if encoder in CODEC:
        return list(CODEC[encoder])
    w, h = size     # a hardware encoder wants a bit rate: ~0.1 bit a pixel (2.8 Mbit/s at 720p30)
    return ["-c:v", encoder, "-b:v", str(max(200_000, int(w * h * max(fps, 1.0) * 0.1)))]


def timing_args(ffmpeg: str, fps: float, avi: bool) -> List[str]:
    """Keep each frame's own time (or, for AVI, the nominal rate by repeating/dropping)."""
    flag = "-fps_mode" if _version(ffmpeg) >= (5, 1) else "-vsync"
    if avi:
        return [flag, "cfr", "-r", f"{fps:.6g}"]
    return [flag, "passthrough", "-enc_time_base:v", "1:1000",
            "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_S})",
            "-g", str(max(1, round(fps * KEYFRAME_S * 2)))]


def command(ffmpeg: str, path: Optional[Path], fps: float, size: Tuple[int, int], encoder: str) -> List[str]:
    """The whole ffmpeg command: Matroska with frame times on stdin, ``path`` out (None:
    encoded and thrown away, for a probe)."""
    avi = path is not None and path.suffix.lower() == ".avi"
    muxer = ["-f", "null"] if path is None else MUXER.get(path.suffix.lower(), [])
    out = AVI if avi else [*codec_args(encoder, size, fps), "-pix_fmt", "yuv420p", *muxer]
    # (-probesize/-analyzeduration: the header says all there is to know; nothing to wait for)
    return [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-probesize", "32", "-analyzeduration", "0", "-f", "matroska", "-i", "pipe:0",
            "-an", *timing_args(ffmpeg, fps, avi), "-flush_packets", "1", *out, "-" if path is None else str(path)]


def choose(ffmpeg: str, size: Tuple[int, int]) -> str:
    """The first H.264 encoder that encodes here (tried once per process and size), else
    MPEG-4 Part 2 with one note."""
    key = (ffmpeg, size)
    if key not in _chosen:
        _chosen[key] = _first_working(ffmpeg, size)
    return _chosen[key]


def _first_working(ffmpeg: str, size: Tuple[int, int]) -> str:
    why = "not tried"
    for name in H264:
        if name in HARDWARE and not glob.glob("/dev/video*"):
            continue                       # (a hardware encoder needs a V4L2 device: none here)
        failed = probe(ffmpeg, name, size)
        if failed is None:
            log.log(logging.INFO if name in HARDWARE else logging.DEBUG, "video: H.264 by %s", name)
            return name
        why = failed
        log.debug("video: %s cannot encode here: %s", name, why)
    if not _noted:
        _noted.append(why)
        log.warning("note: this ffmpeg has no H.264 encoder that works (libx264: %s): recording MPEG-4 "
                    "Part 2, which browsers do not play (Debian's ffmpeg package has libx264)", why)
    return FALLBACK


def probe(ffmpeg: str, encoder: str, size: Tuple[int, int]) -> Optional[str]:
    """None when ``encoder`` encodes a few frames of the stream edgecam pipes, at ``size``;
    otherwise why not (ffmpeg's last line)."""
    w, h = size
    frame = np.full(w * h * 3 // 2, 128, np.uint8).tobytes()
    stream = mkv.header(size, 10.0) + b"".join(mkv.cluster_head(ms, len(frame)) + frame for ms in (0, 40, 100))
    cmd = command(ffmpeg, None, 10.0, size, encoder)
    try:
        done = subprocess.run(cmd, input=stream, capture_output=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"ffmpeg ended with code {done.returncode}"


def _version(ffmpeg: str, cache: Dict[str, Tuple[int, int]] = {}) -> Tuple[int, int]:   # noqa: B006 (a cache)
    """ffmpeg's major and minor version ((99, 0) for a build from git, which is new)."""
    if ffmpeg not in cache:
        try:
            text = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S).stdout
        except (OSError, subprocess.TimeoutExpired):
            text = ""
        m = re.search(r"version n?(\d+)\.(\d+)", text)
        cache[ffmpeg] = (int(m.group(1)), int(m.group(2))) if m else (99, 0)
    return cache[ffmpeg]
