"""A machine-readable frame stamp that survives lossy video compression.

Two rows of 24 large black/white blocks across the top of the image:
row 0 holds the low 24 bits of the frame number; row 1 holds its high 8 bits,
the camera index and an 8-bit checksum. Tests and `verify` decode it from the
pixels to prove which frame of which camera landed where.
"""

from __future__ import annotations

import numpy as np

BITS_PER_ROW = 24
MIN_WIDTH = BITS_PER_ROW * 8  # blocks narrower than 8 px blur away under H.264


def block_size(width: int) -> int:
    return width // BITS_PER_ROW


def band_height(width: int) -> int:
    """Rows of the image occupied by the stamp."""
    return 2 * block_size(width)


def _checksum(frame_number: int, camera_index: int) -> int:
    value = (frame_number * 2654435761 + camera_index * 40503) & 0xFFFFFFFF
    # The salt keeps an all-black or all-white band from reading as a valid stamp.
    return (value ^ (value >> 8) ^ (value >> 16) ^ (value >> 24) ^ 0xA5) & 0xFF


_SHIFTS = np.arange(BITS_PER_ROW - 1, -1, -1)


def burn(image: np.ndarray, frame_number: int, camera_index: int) -> None:
    """Stamp frame_number (0 .. 2**32-1) and camera_index (0..255) into image in place."""
    block = block_size(image.shape[1])
    high = ((frame_number >> 24) & 0xFF) << 16 | (camera_index & 0xFF) << 8
    codes = np.array((frame_number & 0xFFFFFF, high | _checksum(frame_number, camera_index)))
    cells = ((codes[:, None] >> _SHIFTS) & 1).astype(np.uint8) * np.uint8(255)
    row_pixels = np.repeat(cells, block * image.shape[2], axis=1)
    band = image[: 2 * block, : BITS_PER_ROW * block]
    band.reshape(2, block, BITS_PER_ROW * block, -1)[:] = row_pixels.reshape(
        2, 1, BITS_PER_ROW * block, -1
    )


def read(image: np.ndarray) -> tuple[int, int] | None:
    """Return (frame_number, camera_index), or None when no valid stamp is present."""
    block = block_size(image.shape[1])
    if block < 2 or image.shape[0] < 2 * block:
        return None
    margin = max(1, block // 4)
    band = image[: 2 * block, : BITS_PER_ROW * block]
    gray = band.mean(axis=2) if band.ndim == 3 else band
    cells = gray.reshape(2, block, BITS_PER_ROW, block)[:, margin:-margin, :, margin:-margin]
    bits = (cells.mean(axis=(1, 3)) > 127).astype(np.int64)
    weights = 1 << _SHIFTS.astype(np.int64)
    low, high = (int(v) for v in bits @ weights)
    frame_number = (high >> 16) << 24 | low
    camera_index = (high >> 8) & 0xFF
    if high & 0xFF != _checksum(frame_number, camera_index):
        return None
    return frame_number, camera_index
