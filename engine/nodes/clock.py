"""Clocks across the machines of a rig: each node's clock, and its offset from the
coordinator's measured over the broker.

Capture times are on each machine's monotonic clock, which starts anywhere: two
machines' clocks differ by an arbitrary offset (and drift apart by some parts per
million). The coordinator measures each node's offset NTP-style: it notes its clock,
asks the node for its clock (a ClockProbe), and notes its clock again when the reading
arrives. The node read its clock somewhere between the two, so
offset = node - (sent + received) / 2, wrong by at most half the round trip. Of many
probes the quickest round trips are the least wrong (a slow one waited in a queue on
one of the ways only); their spread says whether the offset is stable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A test stands one machine's engines in for several: this shifts a node's clock (ns).
CLOCK_OFFSET_ENV = "RECORDER_CLOCK_OFFSET_NS"
BEST_SHARE = 0.25  # the share of probes, quickest round trips first, the offset comes from


def node_clock_offset_ns() -> int:
    """The shift of this node's clock from its monotonic clock (0 but in tests)."""
    value = os.environ.get(CLOCK_OFFSET_ENV, "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{CLOCK_OFFSET_ENV} must be an integer of nanoseconds, "
                         f"not {value!r}") from None


class NodeClock:
    """This node's clock: the monotonic clock its capture times are on, shifted by
    CLOCK_OFFSET_ENV."""

    def __init__(self, offset_ns: int | None = None) -> None:
        self.offset_ns = node_clock_offset_ns() if offset_ns is None else offset_ns

    def now_ns(self) -> int:
        return time.monotonic_ns() + self.offset_ns


@dataclass(frozen=True)
class ClockEstimate:
    """A node's clock minus the coordinator's, from `probes` probes."""

    offset_ns: int
    uncertainty_ns: int  # half the quickest round trip: the offset is within this
    spread_ns: int  # of the quickest probes' offsets: large when the link or clock is not steady
    round_trip_ns: int  # the quickest
    probes: int

    def to_dict(self) -> dict[str, float | int]:
        return {"offset_ms": round(self.offset_ns / 1e6, 3),
                "uncertainty_ms": round(self.uncertainty_ns / 1e6, 3),
                "spread_ms": round(self.spread_ns / 1e6, 3),
                "round_trip_ms": round(self.round_trip_ns / 1e6, 3),
                "probes": self.probes}


def measure_offset(ask: Callable[[int], int], probes: int,
                   now_ns: Callable[[], int] = time.monotonic_ns) -> ClockEstimate:
    """Probe a node `probes` times: ask(sent_ns) returns the node's clock reading (and
    raises when the node does not answer). See the module for the method."""
    if probes < 1:
        raise ValueError("a clock needs at least one probe")
    samples = []
    for _ in range(probes):
        sent = now_ns()
        node = ask(sent)
        received = now_ns()
        samples.append((received - sent, node - (sent + received) // 2))
    samples.sort()
    best = samples[: max(1, round(len(samples) * BEST_SHARE))]
    offsets = np.array([offset for _, offset in best], np.int64)
    return ClockEstimate(offset_ns=int(np.median(offsets)),
                         uncertainty_ns=best[0][0] // 2,
                         spread_ns=int(offsets.max() - offsets.min()),
                         round_trip_ns=best[0][0], probes=probes)
