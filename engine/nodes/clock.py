"""Clocks across the machines of a rig: each node's clock, and its offset from the
coordinator's measured over the broker.

Capture times are on each machine's clock (engine/machine_clock.py), which starts anywhere: two
machines' clocks differ by an arbitrary offset (and drift apart by some parts per
million). The coordinator measures each node's offset NTP-style: it notes its clock,
asks the node for its clock (a ClockProbe), and notes its clock again when the reading
arrives. The node read its clock somewhere between the two, so
offset = node - (sent + received) / 2, wrong by at most half the round trip. Of many
probes the quickest round trips are the least wrong (a slow one waited in a queue on
one of the ways only); their spread says whether the offset is stable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

BEST_SHARE = 0.25  # the share of probes, quickest round trips first, the offset comes from


@dataclass(frozen=True)
class ClockEstimate:
    """A node's clock minus the coordinator's, from `probes` probes."""

    offset_ns: int
    uncertainty_ns: int  # half the quickest round trip: the offset is within this
    spread_ns: int  # of the quickest probes' offsets: large when the link or clock is not steady
    round_trip_ns: int  # the quickest
    probes: int
    at_ns: int = 0  # when it was measured (the coordinator's clock): for drift

    def to_dict(self) -> dict[str, float | int]:
        return {"offset_ms": round(self.offset_ns / 1e6, 3),
                "uncertainty_ms": round(self.uncertainty_ns / 1e6, 3),
                "spread_ms": round(self.spread_ns / 1e6, 3),
                "round_trip_ms": round(self.round_trip_ns / 1e6, 3),
                "probes": self.probes, "offset_ns": self.offset_ns, "at_ns": self.at_ns}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClockEstimate:
        """The estimate to_dict wrote (a rig manifest's)."""
        return cls(offset_ns=int(values["offset_ns"]),
                   uncertainty_ns=round(float(values["uncertainty_ms"]) * 1e6),
                   spread_ns=round(float(values["spread_ms"]) * 1e6),
                   round_trip_ns=round(float(values["round_trip_ms"]) * 1e6),
                   probes=int(values["probes"]), at_ns=int(values["at_ns"]))


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
    at_ns = now_ns()
    samples.sort()
    best = samples[: max(1, round(len(samples) * BEST_SHARE))]
    offsets = np.array([offset for _, offset in best], np.int64)
    return ClockEstimate(offset_ns=int(np.median(offsets)),
                         uncertainty_ns=best[0][0] // 2,
                         spread_ns=int(offsets.max() - offsets.min()),
                         round_trip_ns=best[0][0], probes=probes, at_ns=at_ns)


def offset_at(start: ClockEstimate, end: ClockEstimate | None, at_ns: np.ndarray
              ) -> np.ndarray:
    """A node's offset at moments at_ns (the coordinator's clock): the straight line
    through the two measurements, so the clocks' drift between them is corrected too;
    the start's offset when there is no second measurement."""
    at = np.asarray(at_ns, np.int64)
    if end is None or end.at_ns == start.at_ns:
        return np.full(at.shape, start.offset_ns, np.int64)
    slope = (end.offset_ns - start.offset_ns) / (end.at_ns - start.at_ns)
    return start.offset_ns + np.round((at - start.at_ns) * slope).astype(np.int64)


def drift_ppm(start: ClockEstimate, end: ClockEstimate) -> float:
    """How fast the node's clock runs against the coordinator's (parts per million)."""
    elapsed = end.at_ns - start.at_ns
    return (end.offset_ns - start.offset_ns) / elapsed * 1e6 if elapsed else 0.0
