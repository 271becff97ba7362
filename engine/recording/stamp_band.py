"""The top rows of a decoded frame, where the picture stamps (framecode, clockstamp) are.

Taken from the decoded planes without converting the whole frame: a full BGR conversion
is 10x slower than decoding H.264, and every frame of a recording is read.
"""

from __future__ import annotations

import av
import numpy as np

# 8-bit pixel formats whose first plane is luma (what our encoders and decoders produce):
# black/white blocks read the same in it.
_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"}


def top_rows(frame: av.VideoFrame, rows: int) -> np.ndarray:
    """The first rows of frame as luma (or BGR), ready for framecode.read or clockstamp.read."""
    plane = frame.planes[0]
    pixels = np.frombuffer(memoryview(plane), np.uint8)
    if frame.format.name in _LUMA_FIRST:
        return pixels.reshape(-1, plane.line_size)[:rows, : frame.width]
    if frame.format.name == "bgr0":
        return pixels.reshape(-1, plane.line_size // 4, 4)[:rows, : frame.width, :3]
    return frame.to_ndarray(format="bgr24")[:rows]
