"""The frame ranges a take recorded (its segments) and the frame numbers they promise.

A take records the group's frames [first_frame, last_frame) less its writing pauses, the
same frame numbers for every camera (engine/ipc/control.py flags them). The manifest's
"segments" lists what was recorded as [first, last_exclusive] ranges in order, so frame k
of every video file, and row k of every timestamps file, is the k-th frame number the
segments name; a gap between two segments is a pause. While a take records, its last
segment is open ([first, null]: its end is wherever the take gets to), and finalizing
writes the ranges of the frames kept. A manifest written before segments existed has
none: it reads as one open segment from first_frame, i.e. contiguous frame numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any

import numpy as np

from engine.recording.errors import RecordingError

MANIFEST_KEY = "segments"

Segment = tuple[int, int | None]  # [first, last_exclusive); None: open (still recording)


def manifest_segments(manifest: dict[str, Any]) -> list[Segment]:
    """The segments a manifest promises; RecordingError naming what is wrong with them
    (not a list of [first, last] frame pairs in order, an open one before the end)."""
    raw = manifest.get(MANIFEST_KEY)
    if raw is None:
        first = manifest.get("first_frame")
        if not isinstance(first, int) or isinstance(first, bool):
            raise RecordingError(f"manifest first_frame is {first!r}, not a frame number")
        return [(first, None)]
    if not isinstance(raw, list):
        raise RecordingError(f"manifest segments are {raw!r}, not a list of frame ranges")
    segments: list[Segment] = []
    for position, entry in enumerate(raw):
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and _frame(entry[0])
                and (entry[1] is None or _frame(entry[1]))):
            raise RecordingError(f"manifest segment #{position} is {entry!r}, not a "
                                 "[first, last] pair of frame numbers")
        first, last = int(entry[0]), None if entry[1] is None else int(entry[1])
        if last is not None and last <= first:
            raise RecordingError(f"manifest segment #{position} [{first}, {last}] is empty")
        if segments:
            previous = segments[-1][1]
            if previous is None or first < previous:
                raise RecordingError(f"manifest segment #{position} [{first}, {last}] does "
                                     "not follow the one before it")
        segments.append((first, last))
    return segments


def _frame(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def frame_numbers(segments: Sequence[Segment]) -> Iterator[int]:
    """The frame numbers the segments name, in file order (without end if the last is
    open)."""
    for first, last in segments:
        yield from (range(first, last) if last is not None else count(first))


def frame_at(segments: Sequence[Segment], index: int) -> int | None:
    """The frame number of file frame `index` (0 = the first recorded); None past the end
    of closed segments."""
    for first, last in segments:
        if last is None or index < last - first:
            return first + index
        index -= last - first
    return None


def recorded(segments: Sequence[Segment], reached: int) -> int:
    """How many of the segments' frames lie below frame number `reached` (an open
    segment ends there)."""
    total = 0
    for first, last in segments:
        end = reached if last is None else min(last, reached)
        total += max(0, end - first)
    return total


def leading(segments: Sequence[Segment], frames: int) -> list[list[int]]:
    """The closed ranges of the segments' first `frames` frame numbers (what a take cut
    to that many frames holds), as the manifest keeps them; empty ranges are left out."""
    kept: list[list[int]] = []
    left = frames
    for first, last in segments:
        if left <= 0:
            break
        length = left if last is None else min(left, last - first)
        if length > 0:
            kept.append([first, first + length])
            left -= length
    return kept


def as_array(segments: Sequence[Segment]) -> np.ndarray:
    """Every frame number of closed segments, in order (int64)."""
    parts = [np.arange(first, last, dtype=np.int64) for first, last in segments
             if last is not None]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)
