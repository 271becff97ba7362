"""Which pixel format a USB camera is asked to deliver, of those it really offers.

Left to itself, OpenCV's V4L2 reader tries YUYV before MJPEG, and uncompressed YUYV does
not fit a large size at full rate through USB 2 (a 1080p camera then delivers 5 fps).
So "auto" asks for MJPG wherever the camera offers the requested size at the requested
rate, else the format that comes closest to it (YUYV before the others). Only formats the
reader decodes are offered: H.264 from a camera's own encoder is not among them.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.sources.v4l2_device import Mode

AUTO = "auto"
# Pixel formats OpenCV's V4L2 reader converts to BGR, most wanted first: compressed MJPG
# fits the most through USB, then YUYV, the raw format every UVC camera has.
DECODABLE = ("MJPG", "YUYV", "JPEG", "UYVY", "NV12", "NV21", "YU12", "YV12", "BGR3",
             "RGB3", "GREY", "Y16", "BA81", "GBRG")
FULL_RATE = 0.99  # a mode at 29.97 fps counts as offering 30


def offered_formats(modes: Iterable[Mode]) -> tuple[str, ...]:
    """The formats a camera offers that can be read, most wanted first."""
    present = {mode.fourcc for mode in modes}
    return tuple(fourcc for fourcc in DECODABLE if fourcc in present)


def choose_format(modes: Iterable[Mode], width: int, height: int, fps: float,
                  wanted: str = AUTO) -> str | None:
    """The format to ask for: the user's `wanted` one where the camera offers it; for
    "auto", the one that delivers the size at the highest rate up to `fps` (MJPG on a tie,
    then YUYV). None when the camera lists nothing readable: the driver then chooses."""
    modes = tuple(modes)
    formats = offered_formats(modes)
    if wanted in formats:
        return wanted
    if not formats:
        return None

    def rate(fourcc: str) -> float:
        best = max((mode.fps for mode in modes if mode.fourcc == fourcc
                    and (mode.width, mode.height) == (width, height)), default=0.0)
        return fps if best >= fps * FULL_RATE else best

    return max(formats, key=lambda fourcc: (rate(fourcc), -formats.index(fourcc)))


def format_modes(modes: Iterable[Mode], fourcc: str = AUTO) -> tuple[tuple[int, int, float], ...]:
    """The (width, height, fps) modes to pick from: those of one format, or for "auto"
    those of every readable format, largest and fastest first."""
    readable = set(DECODABLE) if fourcc == AUTO else {fourcc}
    picked = {(mode.width, mode.height, mode.fps) for mode in modes if mode.fourcc in readable}
    return tuple(sorted(picked, key=lambda m: (-m[0] * m[1], -m[0], -m[2])))
