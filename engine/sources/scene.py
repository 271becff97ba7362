"""The synthetic camera's realistic content: pictures that cost an encoder what a real
camera's do.

A clean test pattern (flat colours, one moving square) compresses to a fraction of a real
camera's pictures, so encoder costs measured on it flatter the engine. This scene has what
makes real pictures expensive: texture at every scale with edges and shapes, a view that
drifts across it (global motion), an object moving on its own path (local motion), and
sensor noise that is new in every frame.

Everything frame-sized is built once (when the camera opens or its settings change); a
frame is a few OpenCV calls writing into the caller's buffer, with no frame-sized
allocation.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# The noise sheet is this many pixels larger than the frame each way, and each frame reads
# it at one of (NOISE_MARGIN + 1)**2 = 4225 offsets picked by a hash of its number: about a
# frame's memory holds thousands of noise fields (two frames share one by a 1 in 4225
# chance, and then the view and the ball have moved on).
NOISE_MARGIN = 64
NOISE_ZERO = 128  # the sheet's grey level for no noise (it holds noise + NOISE_ZERO)
# The view circles the scene on an ellipse at a pace that moves it a pixel or more every
# frame (a slower drift would stand still for frames between one-pixel steps).
DRIFT_STEP = 1.5  # px per frame along the ellipse's short axis, at its fastest
BALL_PERIODS = (150, 97)  # frames per swing of the ball across and down
_MASK64 = (1 << 64) - 1


class RealisticScene:
    """A textured scene larger than the frame, tinted like the camera's test pattern,
    rendered per frame with drift, a moving ball and temporal noise (noise_sd grey levels).
    The ball keeps below keep_clear_rows (the frame stamp's band and a margin)."""

    def __init__(
        self,
        width: int,
        height: int,
        tint: np.ndarray,
        seed: int,
        noise_sd: float,
        keep_clear_rows: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        self._size = (width, height)
        self._pan = (max(2, width // 12), max(2, height // 12))  # the ellipse's half-axes
        self._pan_period = max(3, int(2 * math.pi * min(self._pan) / DRIFT_STEP))  # frames
        self._pan_phase = rng.uniform(0.0, 2 * math.pi)
        pan_x, pan_y = self._pan
        self._scene = _grey_levels(_texture(width + 2 * pan_x, height + 2 * pan_y, tint, rng))
        ball = max(8, min(height // 6, (height - keep_clear_rows) // 2))
        ball_image, self._ball_mask = _ball(ball, tint, rng)
        self._ball = _grey_levels(ball_image)
        self._ball_frame = np.empty_like(self._ball)  # the ball as this frame shows it
        self._ball_top = keep_clear_rows
        self._ball_phase = rng.uniform(0.0, 2 * math.pi, 2)
        self._noise = _noise_sheet(width, height, noise_sd, rng) if noise_sd > 0 else None

    def render(self, out: np.ndarray, frame_number: int, gain: float, offset: float) -> None:
        """Write frame frame_number into out (height x width x 3, uint8): the scene times
        gain plus offset (as exposure and brightness light the clean pattern), plus noise."""
        width, height = self._size
        (pan_x, pan_y), size = self._pan, self._ball.shape[0]
        left = _swing(frame_number, pan_x, self._pan_period, self._pan_phase + math.pi / 2)
        top = _swing(frame_number, pan_y, self._pan_period, self._pan_phase)
        view = self._scene[top:top + height, left:left + width]
        if self._noise is None:  # the view's second term, weighed by 0, adds nothing
            noise, weight, bias = view, 0.0, offset
        else:
            noise_top, noise_left = _noise_origin(frame_number)
            noise = self._noise[noise_top:noise_top + height, noise_left:noise_left + width]
            weight, bias = 1.0, offset - NOISE_ZERO
        # One saturating pass over the frame: scene x gain + noise + offset.
        cv2.addWeighted(view, gain, noise, weight, bias, dst=out)
        x = _swing(frame_number, (width - size) // 2, BALL_PERIODS[0], self._ball_phase[0])
        y = self._ball_top + _swing(frame_number, (height - size - self._ball_top) // 2,
                                    BALL_PERIODS[1], self._ball_phase[1])
        cv2.addWeighted(self._ball, gain, noise[y:y + size, x:x + size], weight, bias,
                        dst=self._ball_frame)
        np.copyto(out[y:y + size, x:x + size], self._ball_frame, where=self._ball_mask)


def _swing(frame_number: int, amplitude: int, period: int, phase: float) -> int:
    """0 .. 2 x amplitude along a sine of the given period (frames): a smooth closed path."""
    angle = 2 * math.pi * (frame_number % period) / period + phase
    return round(amplitude * (1.0 + math.sin(angle)))


def _noise_origin(frame_number: int) -> tuple[int, int]:
    """The noise sheet's offset for a frame: a hash of its number (splitmix64's finalizer),
    so consecutive frames read unrelated fields at unrelated displacements."""
    z = (frame_number + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z % (NOISE_MARGIN + 1), (z >> 32) % (NOISE_MARGIN + 1)


def _noise_sheet(width: int, height: int, noise_sd: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of noise_sd grey levels, offset by NOISE_ZERO, independent per pixel
    and channel, NOISE_MARGIN larger than the frame each way."""
    shape = (height + NOISE_MARGIN, width + NOISE_MARGIN, 3)
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise *= noise_sd
    noise += NOISE_ZERO
    return np.clip(np.rint(noise), 0, 255).astype(np.uint8)


def _smooth_random(width: int, height: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Random values on a grid of cell x cell pixels, interpolated smoothly (mean 0, sd ~1)."""
    grid = rng.standard_normal((height // cell + 3, width // cell + 3), dtype=np.float32)
    big = cv2.resize(grid, ((width // cell + 3) * cell, (height // cell + 3) * cell),
                     interpolation=cv2.INTER_CUBIC)
    return big[cell:cell + height, cell:cell + width]


def _texture(width: int, height: int, tint: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A BGR float image in 0..1: coarse shading, shapes with hard and soft edges, then
    detail at finer scales over everything (like foliage, fabric, brickwork)."""
    shading = 0.5 + 0.15 * _smooth_random(width, height, max(8, width // 3), rng)
    shading += 0.09 * _smooth_random(width, height, max(4, width // 12), rng)
    image = np.empty((height, width, 3), np.float32)
    for channel in range(3):  # a little colour of its own per channel, over the tint
        image[:, :, channel] = shading * (0.45 + 0.55 * tint[channel]) + 0.05 * _smooth_random(
            width, height, max(8, width // 6), rng)
    scale = max(width, height)
    for _ in range(24):
        colour = tuple(float(c) for c in rng.uniform(0.1, 0.9) * (0.4 + 0.6 * tint)
                       + rng.uniform(-0.1, 0.1, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(scale // 40, scale // 8))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + size, y + size // 2), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(image, (x, y), size // 2, colour, -1, cv2.LINE_AA)
        else:
            end = (x + int(rng.integers(-size, size)), y + int(rng.integers(-size, size)))
            cv2.line(image, (x, y), end, colour, max(1, size // 12), cv2.LINE_AA)
    detail = 0.05 * _smooth_random(width, height, 16, rng)
    detail += 0.04 * _smooth_random(width, height, 4, rng)
    detail += 0.03 * rng.standard_normal((height, width), dtype=np.float32)  # grain
    image += detail[:, :, None]
    return image


def _ball(size: int, tint: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A shaded, textured ball (BGR float 0..1) and the mask of its pixels."""
    across = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    radius2 = across[None, :] ** 2 + across[:, None] ** 2
    lit = np.clip(1.0 - (across[None, :] + 0.4) ** 2 - (across[:, None] + 0.4) ** 2, 0, 1)
    surface = 0.25 + 0.6 * lit + 0.08 * _smooth_random(size, size, max(2, size // 8), rng)
    colour = 1.0 - 0.7 * tint  # the tint's complement, so the ball stands out
    ball = surface[:, :, None] * colour
    return ball, (radius2 <= 1.0)[:, :, None]


def _grey_levels(image: np.ndarray) -> np.ndarray:
    """The 0..1 image as uint8 grey levels 20..235, leaving room for noise."""
    return np.clip(20.0 + 215.0 * image, 0, 255).astype(np.uint8)
