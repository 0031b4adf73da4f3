"""The smallest Matroska stream that carries each frame's own time: what edgecam pipes into
ffmpeg, which encodes it (H.264) with those times kept (variable frame rate).

Raw video on ffmpeg's stdin (``-f rawvideo``) has no timestamps: ffmpeg stamps frame n at
n / rate, so a camera that delivers 28.6 frames a second into a file stamped at its nominal
29.97 plays 4.5% short of the wall clock, and a pause or a reconnect disappears from the
time line. A container gives each frame its time. Matroska is the one that is simple to
write as a stream: an EBML header, a Segment of unknown size, one track of uncompressed
I420 (``V_UNCOMPRESSED``, ColourSpace ``I420``: ffmpeg's own Matroska muxer writes raw
video the same way), then one Cluster per frame whose Timecode is the frame's time in
milliseconds and whose SimpleBlock is the frame. No compression on the way (a JPEG round
trip would cost more CPU than the encoder's own colour conversion, and blur the picture);
I420 is 1.5 bytes a pixel, half of BGR's 3, and OpenCV converts to it faster than ffmpeg's
swscale does (scripts/measure-video: MPEG-4 this way costs ffmpeg 2.6 ms a 720p
frame against 3.6 ms from raw BGR, and edgecam's side no more; docs/file-mode.md)."""

from __future__ import annotations

import struct
from typing import Tuple

UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"     # an 8-byte size with every bit set

EBML = 0x1A45DFA3
SEGMENT = 0x18538067
INFO, TIMECODE_SCALE, MUXING_APP, WRITING_APP = 0x1549A966, 0x2AD7B1, 0x4D80, 0x5741
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_UID, TRACK_TYPE, CODEC_ID = 0x1654AE6B, 0xAE, 0xD7, 0x73C5, 0x83, 0x86
DEFAULT_DURATION = 0x23E383
VIDEO, PIXEL_WIDTH, PIXEL_HEIGHT, COLOUR_SPACE = 0xE0, 0xB0, 0xBA, 0x2EB524
CLUSTER, CLUSTER_TIMECODE, SIMPLE_BLOCK = 0x1F43B675, 0xE7, 0xA3


def _id(element: int) -> bytes:
    return element.to_bytes((element.bit_length() + 7) // 8, "big")


def _size(n: int) -> bytes:
    """An EBML variable-length size: 8 bytes always (simple, and big enough for any frame)."""
    return (n | (1 << 56)).to_bytes(8, "big")


def element(eid: int, payload: bytes) -> bytes:
    return _id(eid) + _size(len(payload)) + payload


def uint(eid: int, value: int) -> bytes:
    return element(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def header(size: Tuple[int, int], fps: float) -> bytes:
    """The stream's start: the EBML header, the Segment (open-ended), Info and Tracks. The
    track's default duration (1 / ``fps``) is how long the last frame lasts; every other
    frame lasts until the next one's time."""
    w, h = size
    ebml = element(EBML, uint(0x4286, 1) + uint(0x42F7, 1) + uint(0x42F2, 4) + uint(0x42F3, 8)
                   + element(0x4282, b"matroska") + uint(0x4287, 4) + uint(0x4285, 2))
    info = element(INFO, uint(TIMECODE_SCALE, 1_000_000)            # a timecode counts milliseconds
                   + element(MUXING_APP, b"edgecam") + element(WRITING_APP, b"edgecam"))
    video = element(VIDEO, uint(PIXEL_WIDTH, w) + uint(PIXEL_HEIGHT, h) + element(COLOUR_SPACE, b"I420"))
    track = element(TRACK_ENTRY, uint(TRACK_NUMBER, 1) + uint(TRACK_UID, 1) + uint(TRACK_TYPE, 1)
                    + uint(DEFAULT_DURATION, round(1e9 / max(fps, 0.1))) + element(CODEC_ID, b"V_UNCOMPRESSED") + video)
    return ebml + _id(SEGMENT) + UNKNOWN_SIZE + info + element(TRACKS, track)


def cluster_head(ms: int, frame_bytes: int) -> bytes:
    """What goes before a frame of ``frame_bytes`` at ``ms`` milliseconds: a Cluster holding
    one SimpleBlock (track 1, relative time 0, key frame). The frame's bytes follow it."""
    block_head = b"\x81" + struct.pack(">hB", 0, 0x80)
    block = _id(SIMPLE_BLOCK) + _size(len(block_head) + frame_bytes) + block_head
    timecode = uint(CLUSTER_TIMECODE, ms)
    return _id(CLUSTER) + _size(len(timecode) + len(block) + frame_bytes) + timecode + block
