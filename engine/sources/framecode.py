"""A machine-readable frame stamp that survives lossy video compression.

Two rows of 24 large black/white blocks across the top of the image:
row 0 holds the low 24 bits of the frame number; row 1 holds its high 8 bits,
the camera index and an 8-bit checksum. Tests and `verify` decode it from the
pixels to prove which frame of which camera landed where.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    high = ((frame_number >> 24) & 0xFF) << 16 | (camera_index & 0xFF) << 8
    burn_rows(image, (frame_number & 0xFFFFFF, high | _checksum(frame_number, camera_index)), 0)


def read(image: np.ndarray) -> tuple[int, int] | None:
    """Return (frame_number, camera_index), or None when no valid stamp is present."""
    rows = read_rows(image, 0, 2)
    if rows is None:
        return None
    low, high = rows
    frame_number = (high >> 16) << 24 | low
    camera_index = (high >> 8) & 0xFF
    if high & 0xFF != _checksum(frame_number, camera_index):
        return None
    return frame_number, camera_index


def burn_rows(image: np.ndarray, codes: Sequence[int], first_row: int) -> None:
    """Burn 24-bit codes as block rows first_row, first_row + 1, ... of image, in place.
    Other stamps (clockstamp) share the geometry by taking rows below this one's."""
    block = block_size(image.shape[1])
    cells = ((np.array(codes)[:, None] >> _SHIFTS) & 1).astype(np.uint8) * np.uint8(255)
    row_pixels = np.repeat(cells, block * image.shape[2], axis=1)
    band = image[first_row * block : (first_row + len(codes)) * block, : BITS_PER_ROW * block]
    band.reshape(len(codes), block, BITS_PER_ROW * block, -1)[:] = row_pixels.reshape(
        len(codes), 1, BITS_PER_ROW * block, -1
    )


def read_rows(image: np.ndarray, first_row: int, count: int) -> list[int] | None:
    """The 24-bit codes of block rows first_row .. first_row + count - 1 (colour or grey
    image); None when the image is too small to hold them. Checksums are the caller's."""
    block = block_size(image.shape[1])
    end = (first_row + count) * block
    if block < 2 or image.shape[0] < end:
        return None
    margin = max(1, block // 4)
    band = image[first_row * block : end, : BITS_PER_ROW * block]
    gray = band.mean(axis=2) if band.ndim == 3 else band
    cells = gray.reshape(count, block, BITS_PER_ROW, block)[:, margin:-margin, :, margin:-margin]
    bits = (cells.mean(axis=(1, 3)) > 127).astype(np.int64)
    return [int(v) for v in bits @ (1 << _SHIFTS.astype(np.int64))]
