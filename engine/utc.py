"""Wall-clock text for every file the engine writes (manifests, timestamps, sidecars)."""

from __future__ import annotations

import time


def utc_iso(utc_ns: int) -> str:
    """ISO 8601 UTC with microseconds and a trailing Z, e.g. 2026-11-22T04:11:15.123456Z."""
    seconds, nanos = divmod(utc_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1000:06d}Z"


def utc_now_iso() -> str:
    """Now as ISO 8601 UTC with microseconds and a trailing Z."""
    return utc_iso(time.time_ns())
