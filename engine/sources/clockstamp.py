"""A monotonic-clock stamp in the picture: the moment a frame was made, and which one.

A frame count says nothing about time: two files can hold the same number of frames and
show moments a second apart. A source that burns this stamp when it makes a frame (its
true capture time) lets anyone who decodes the recorded files prove which moment each
frame shows. The clock is CLOCK_MONOTONIC (time.monotonic_ns on Linux), which every
process on one machine shares, so stamps compare with the engine's own timestamps.

Five rows of framecode's blocks (they survive H.264 and MJPEG), below framecode's two so
both fit in one frame: 64 bits of monotonic ns, a 32-bit counter of the frames served,
a 24-bit checksum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from engine.sources import framecode

FIRST_ROW = 2  # rows 0 and 1 are framecode's
ROWS = 5
_CODE_BITS = framecode.BITS_PER_ROW * ROWS  # 120 = 64 + 32 + 24
_CHECK_BITS = 24


@dataclass(frozen=True)
class ClockStamp:
    """When a frame was made (CLOCK_MONOTONIC ns) and its number in the served stream."""

    monotonic_ns: int
    counter: int


def band_height(width: int) -> int:
    """Rows of the image the stamp reaches down to (framecode's rows included)."""
    return (FIRST_ROW + ROWS) * framecode.block_size(width)


def _checksum(monotonic_ns: int, counter: int) -> int:
    payload = monotonic_ns.to_bytes(8, "big") + counter.to_bytes(4, "big")
    return int.from_bytes(hashlib.blake2b(payload, digest_size=_CHECK_BITS // 8).digest(), "big")


def burn(image: np.ndarray, monotonic_ns: int, counter: int) -> None:
    """Stamp monotonic_ns (0 .. 2**64-1) and counter (0 .. 2**32-1) into image in place."""
    monotonic_ns &= (1 << 64) - 1
    counter &= (1 << 32) - 1
    code = monotonic_ns << 56 | counter << 24 | _checksum(monotonic_ns, counter)
    rows = [(code >> (framecode.BITS_PER_ROW * (ROWS - 1 - i))) & 0xFFFFFF for i in range(ROWS)]
    framecode.burn_rows(image, rows, FIRST_ROW)


def read(image: np.ndarray) -> ClockStamp | None:
    """The stamp in a decoded image (BGR, or its luma plane), or None when there is none."""
    rows = framecode.read_rows(image, FIRST_ROW, ROWS)
    if rows is None:
        return None
    code = 0
    for row in rows:
        code = code << framecode.BITS_PER_ROW | row
    monotonic_ns, counter = code >> 56, (code >> 24) & 0xFFFFFFFF
    if code & 0xFFFFFF != _checksum(monotonic_ns, counter):
        return None
    return ClockStamp(monotonic_ns, counter)
