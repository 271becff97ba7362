"""How far apart in time the cameras may capture a frame set, and when a recording failed it.

Same count is not same moment: a recording whose cameras captured each frame set a second
apart has identical counts and still is not in sync. The tolerance is the rig's
`sync_tolerance_ms` (the manifest keeps it), else one frame period of the slowest camera:
cameras a whole frame apart no longer show the same moment.

The rule: a recording holds sync while the p99 of its spread is within the tolerance, that
is while no more than about 1 % of its frame sets spread further. So a single outlier does
not fail a recording of 100 frame sets or more (the max still reports it); in a shorter one
a single frame set is already more than 1 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

MANIFEST_KEY = "sync_tolerance_ms"


@dataclass(frozen=True)
class SyncTolerance:
    """The tolerance in ms and what set it (for messages)."""

    ms: float
    source: str


def sync_tolerance(manifest: dict[str, Any], override_ms: float | None = None
                   ) -> SyncTolerance | None:
    """override_ms (the command line's), else the manifest's sync_tolerance_ms, else one
    frame period at the lowest fps its cameras (or the group) ran at; None when none of
    these is a positive number."""
    if override_ms is not None:
        return SyncTolerance(override_ms, "--sync-tolerance-ms")
    recorded = manifest.get(MANIFEST_KEY)
    if _positive(recorded):
        return SyncTolerance(float(recorded), f"the rig's {MANIFEST_KEY}")
    cameras = manifest.get("cameras")
    rates = [camera["settings"].get("fps") for camera in cameras or []
             if isinstance(camera, dict) and isinstance(camera.get("settings"), dict)]
    rates = [float(fps) for fps in [*rates, manifest.get("fps")] if _positive(fps)]
    if not rates:
        return None
    slowest = min(rates)
    return SyncTolerance(1000.0 / slowest, f"one frame period at {slowest:g} fps")


def sync_held(summary: dict[str, Any]) -> bool:
    """A spread summary (engine.recording.sync_report) with a tolerance: its p99 is within
    it. True when the summary has no tolerance to judge by."""
    tolerance = summary.get("tolerance_ms")
    return tolerance is None or summary["p99_ms"] <= tolerance


def sync_failure(summary: dict[str, Any], tolerance: SyncTolerance, stamp: str) -> str | None:
    """The problem line of a summary that does not hold sync, naming its figures; None if
    it holds. stamp names the column the spread came from."""
    if sync_held(summary):
        return None
    over, sets = summary["over_tolerance"], summary["frame_sets"]
    return (
        f"sync: {over} of {sets} frame sets ({100 * over / sets:.1f} %) spread more than "
        f"{tolerance.ms:.1f} ms (the tolerance: {tolerance.source}), more than the "
        f"1 % allowed; p99 {summary['p99_ms']:.1f} ms, max "
        f"{summary['max_ms']:.1f} ms (from {stamp})"
    )


def _positive(value: Any) -> TypeGuard[float]:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
