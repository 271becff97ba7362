"""The embedded test IMU: paced like a free-running sensor, values known in advance.

Sample n is `imu_sample(n, rate_hz)`, a smooth function of its index (slow sinusoids,
gravity on az), so tests and demo rigs can check exactly what was recorded.
"""

from __future__ import annotations

import math

from engine.pacing import DeadlinePacer
from engine.sensors.base import SensorError, parse_rate

IMU_FIELDS = ("ax", "ay", "az", "gx", "gy", "gz")
GRAVITY = 9.80665

_TAU = 2.0 * math.pi


def imu_sample(index: int, rate_hz: float) -> tuple[float, ...]:
    """Accelerations (m/s^2) and angular rates (rad/s) of sample `index` at `rate_hz`."""
    t = index / rate_hz
    return (
        0.5 * math.sin(_TAU * 0.5 * t),
        0.3 * math.sin(_TAU * 0.25 * t + 1.0),
        GRAVITY + 0.1 * math.sin(_TAU * 1.0 * t),
        0.2 * math.cos(_TAU * 0.5 * t),
        0.1 * math.sin(_TAU * 0.2 * t),
        0.05 * math.cos(_TAU * 0.1 * t),
    )


class SyntheticIMU:
    """A 6-axis IMU at `rate_hz` on an absolute deadline schedule.

    The n-th sample read since open() is imu_sample(n): when the reader falls behind,
    the schedule skips ahead (samples due meanwhile are lost, like a sensor's FIFO
    overflowing) but the index stays contiguous.
    """

    def __init__(self, rate_hz: float = 100.0) -> None:
        self._rate_hz = parse_rate("imu:synthetic", rate_hz)
        self._pacer = DeadlinePacer(self._rate_hz)
        self._index = 0
        self._open = False

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def fields(self) -> tuple[str, ...]:
        return IMU_FIELDS

    def open(self) -> None:
        self._pacer.reset()
        self._index = 0
        self._open = True

    def read(self, timeout_s: float) -> tuple[float, ...] | None:
        """The next sample; waits for its deadline, at most one period.

        A sample is always due within one period, so `timeout_s` does not cut the
        wait short: at rates below 1 / timeout_s a call may take up to one period.
        """
        if not self._open:
            raise SensorError("sensor 'imu:synthetic' is not open")
        self._pacer.wait()
        values = imu_sample(self._index, self._rate_hz)
        self._index += 1
        return values

    def close(self) -> None:
        self._open = False
