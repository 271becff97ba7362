"""This machine's clock as the files it records and the rig it belongs to see it.

Capture times are CLOCK_MONOTONIC nanoseconds: steady, shared by every process of one
machine, and starting anywhere, so two machines' clocks differ by an arbitrary offset
that a rig's coordinator measures (engine/nodes/clock.py). The engine keeps its own
scheduling on time.monotonic_ns; a time leaves the machine (a timestamps row, a sensor
sample, a stamp burned into a picture, a clock reading for the rig, a start moment from
it) on this clock. In use the two are the same; a test that stands several engines on
one machine in for several machines shifts one engine's clock by CLOCK_OFFSET_ENV, so
its recordings and answers look exactly like those of another machine.
"""

from __future__ import annotations

import functools
import os
import time

CLOCK_OFFSET_ENV = "RECORDER_CLOCK_OFFSET_NS"


@functools.cache
def offset_ns() -> int:
    """This machine's clock minus time.monotonic_ns (0 but in tests)."""
    value = os.environ.get(CLOCK_OFFSET_ENV, "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{CLOCK_OFFSET_ENV} must be an integer of nanoseconds, "
                         f"not {value!r}") from None


def now_ns() -> int:
    """Now on this machine's clock."""
    return time.monotonic_ns() + offset_ns()


def to_monotonic_ns(machine_ns: int) -> int:
    """A moment on this machine's clock as time.monotonic_ns reads it."""
    return machine_ns - offset_ns()
