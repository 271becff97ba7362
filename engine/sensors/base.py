"""The one small protocol every sensor speaks, and the option parsers sensors share.

A sensor delivers samples (a tuple of floats, one per field) at its own rate; the
recorder stamps each sample with the clocks and the group's frame number, so the
protocol only has to produce values: open -> fields() -> read(timeout) ... -> close().

`create_sensor` only parses and validates; it never opens a device, so a controller
can call it before spawning a sensor process to reject a bad configuration early.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

ACCEPTED = (
    "expected 'imu:synthetic' (options: rate) or 'serial:<path>' "
    "(options: baud, fields, rate), options as '?key=value&...' or keyword settings"
)
# Columns the recorder writes before a sensor's own fields.
STAMP_COLUMNS = ("sample", "monotonic_ns", "utc", "frame")
# What each holds, for the README.txt of every recording folder.
STAMP_COLUMN_MEANINGS = {
    "sample": "the sample's number in this recording, from 0",
    "monotonic_ns": "when the sample arrived, on the monotonic clock of the cameras' "
                    "timestamps (ns): compare it with their stamps to place it within a frame",
    "utc": "wall-clock time (UTC, ISO 8601, microseconds) read with monotonic_ns",
    "frame": "the frame-set number the capture group had reached when the sample arrived "
             "(every camera had published the frame sets before it). It is the group's "
             "number, as in the timestamps' frame column, not a place in a video: the "
             "timestamps row with the same frame gives that set's frame_index",
}

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_RATE_HZ = 10_000.0


class SensorError(RuntimeError):
    """A sensor cannot be parsed, opened or read; the message names the sensor."""


class SensorSource(Protocol):
    """A source of fixed-width numeric samples (an IMU, a line-based serial device)."""

    def open(self) -> None:
        """Open the device; raise SensorError naming the sensor if it will not open."""

    def fields(self) -> tuple[str, ...]:
        """Column names of one sample, e.g. ("ax", "ay", "az"); known before open()."""

    def read(self, timeout_s: float) -> tuple[float, ...] | None:
        """Block until the next sample (its values) or the timeout (None).

        Raise SensorError when the device failed or went away.
        """

    @property
    def rate_hz(self) -> float:
        """Nominal sample rate; 0.0 when the device does not declare one."""

    def close(self) -> None:
        """Release the device; safe to call twice."""


def parse_fields(sensor: str, value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Field names from "ax,ay,az" or a sequence: identifiers, unique, not a stamp column."""
    names = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    names = tuple(str(name).strip() for name in names)
    if not names:
        raise SensorError(f"sensor {sensor!r}: fields must not be empty")
    for name in names:
        if not _FIELD_NAME.fullmatch(name) or name in STAMP_COLUMNS:
            raise SensorError(
                f"sensor {sensor!r}: field name {name!r} must be an identifier other than "
                f"{', '.join(STAMP_COLUMNS)}"
            )
    if len(set(names)) != len(names):
        raise SensorError(f"sensor {sensor!r}: field names repeat: {','.join(names)}")
    return names


def parse_rate(sensor: str, value: Any, *, allow_zero: bool = False) -> float:
    """A sample rate in Hz up to 10 kHz; 0 means 'not declared' where allow_zero."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    low_ok = rate >= 0 if allow_zero else rate > 0
    if isinstance(value, bool) or not (low_ok and rate <= _MAX_RATE_HZ):
        interval = "[0, 10000]" if allow_zero else "(0, 10000]"
        raise SensorError(f"sensor {sensor!r}: rate must be a number in {interval} Hz, "
                          f"got {value!r}")
    return rate


def check_keys(sensor: str, options: dict[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise SensorError(f"sensor {sensor!r}: unknown option(s) {', '.join(unknown)}; "
                          f"accepted: {', '.join(accepted)}")
