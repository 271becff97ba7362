"""Bringing a decoded picture into a frame ring's slot, whatever shape it came in."""

from __future__ import annotations

import cv2
import numpy as np


def fit_into(image: np.ndarray, out: np.ndarray) -> None:
    """Copy a decoded frame into `out` (BGR), converting gray or BGRA and resizing when
    the stream changed size (the ring keeps its geometry)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    convert = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}.get(channels)
    if image.shape[:2] == out.shape[:2]:
        if convert is None:
            np.copyto(out, image)
        else:
            cv2.cvtColor(image, convert, dst=out)
        return
    if convert is not None:
        image = cv2.cvtColor(image, convert)
    cv2.resize(image, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_AREA)
