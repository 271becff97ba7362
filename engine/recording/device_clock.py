"""A camera's own clock mapped onto this machine's monotonic clock, measured from its frames.

A machine-vision camera stamps every exposure with its own clock (`device_ns` in the
timestamps). That clock has its own origin and runs a little fast or slow, so the stamps
of two cameras cannot be compared until each is mapped onto the engine's clock. Without
PTP between camera and computer the mapping is measured, NTP-style but one way: a frame
arrives after its exposure, so arrival - device stamp = offset + delivery delay, and the
delay is never below the camera's quickest delivery (readout and transfer). The lowest
of those differences over the take trace offset + that quickest delay; a line through
the lowest one of each stretch of frames gives offset and drift, and is lowered until it
is under every frame (no exposure maps after its own arrival).

A mapped stamp is so the exposure's time plus the camera's quickest delivery delay
(a constant per camera, about a millisecond on GigE at VGA size): exposure times of
like cameras on like links compare to within the jitter of their device clocks, which
is what `exposure` in the sync report measures. Arrival jitter (network, the computer's
scheduling) does not enter the mapped stamps at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fewer frames with a device stamp than this give no mapping (the drift would be noise).
MIN_FRAMES = 16
# The take is cut into this many stretches; each gives its lowest arrival - device.
STRETCHES = 16


@dataclass(frozen=True)
class DeviceClock:
    """host_ns = origin_host_ns + offset_ns + (device_ns - origin_ns) * (1 + drift)."""

    origin_ns: int  # the first device stamp
    origin_host_ns: int  # the first frame's arrival (integers: ns near 2**60 stay exact)
    offset_ns: float  # <= 0: the first frame's exposure came before its arrival
    drift: float  # host ns per device ns, minus 1 (positive: the device clock is slow)
    frames: int  # frames the mapping was measured on
    delay_ms: tuple[float, float]  # p50 and p99 of each frame's arrival after its mapping

    @property
    def drift_ppm(self) -> float:
        return self.drift * 1e6

    def to_host(self, device_ns: np.ndarray) -> np.ndarray:
        """Device stamps as monotonic ns of this machine (int64)."""
        since = np.asarray(device_ns, np.int64) - self.origin_ns
        return self.origin_host_ns + np.round(self.offset_ns + since * (1.0 + self.drift)
                                              ).astype(np.int64)

    def summary(self) -> dict[str, float | int]:
        return {"frames": self.frames, "drift_ppm": round(self.drift_ppm, 2),
                "delivery_p50_ms": round(self.delay_ms[0], 3),
                "delivery_p99_ms": round(self.delay_ms[1], 3)}


def fit_device_clock(device_ns: np.ndarray, arrival_ns: np.ndarray) -> DeviceClock | None:
    """The mapping of a camera's device stamps, measured against when each frame arrived
    (both per frame; device stamps < 0 are frames without one); None without enough."""
    device = np.asarray(device_ns, np.int64)
    arrival = np.asarray(arrival_ns, np.int64)
    keep = device >= 0
    device, unique = np.unique(device[keep], return_index=True)  # a repeat stamps twice
    arrival = arrival[keep][unique]
    if len(device) < MIN_FRAMES:
        return None
    origin = int(device[0])
    since = (device - origin).astype(np.float64)  # small numbers: exact in float
    lag = ((arrival - device) - (arrival[0] - device[0])).astype(np.float64)
    lowest = [chunk[np.argmin(lag[chunk])]
              for chunk in np.array_split(np.arange(len(device)), STRETCHES) if len(chunk)]
    drift, offset = np.polyfit(since[lowest], lag[lowest], 1)
    offset -= max(0.0, float(np.max(offset + drift * since - lag)))  # under every frame
    delay_ms = (lag - offset - drift * since) / 1e6
    p50, p99 = np.percentile(delay_ms, [50, 99])
    return DeviceClock(origin_ns=origin, origin_host_ns=int(arrival[0]), offset_ns=float(offset),
                       drift=float(drift), frames=len(device),
                       delay_ms=(float(p50), float(p99)))


# A camera follows its trigger when its exposures come this steadily after it (p1 to p99,
# as a share of the frame period); one that ignores the trigger spreads over the period.
FOLLOWS_TRIGGER_SHARE = 0.25


@dataclass(frozen=True)
class TriggerLag:
    """How long after its trigger fired each exposure of a triggered camera began, by its
    own clock: steady for a camera that exposes on its trigger."""

    p1_ms: float
    p50_ms: float
    p99_ms: float

    def follows(self, fps: float) -> bool:
        return self.p99_ms - self.p1_ms <= FOLLOWS_TRIGGER_SHARE * 1000 / fps

    def summary(self) -> dict[str, float]:
        return {"p1": round(self.p1_ms, 3), "p50": round(self.p50_ms, 3),
                "p99": round(self.p99_ms, 3)}


def trigger_lag(clock: DeviceClock, device_ns: np.ndarray, fired_ns: np.ndarray) -> TriggerLag:
    """The lag of every frame with a device stamp behind its trigger (fired_ns)."""
    stamped = np.asarray(device_ns) >= 0
    lag_ms = (clock.to_host(np.asarray(device_ns)[stamped])
              - np.asarray(fired_ns)[stamped]) / 1e6
    p1, p50, p99 = np.percentile(lag_ms, [1, 50, 99])
    return TriggerLag(float(p1), float(p50), float(p99))
