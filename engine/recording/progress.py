"""How a long job (finalizing, recovering, verifying, exporting a take) says how far it is.

A job takes an optional `progress` callback and calls it with the fraction done, 0..1;
a job made of steps hands each step a `share` of its callback, so the steps' fractions
add up to one rising figure (the CLI draws it as a bar, the engine sends it as events).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float], None]


def share(progress: Progress | None, start: float, end: float) -> Progress | None:
    """A step's own 0..1 reported as start..end of the whole job's progress."""
    if progress is None:
        return None
    whole = progress

    def report(fraction: float) -> None:
        whole(start + (end - start) * min(max(fraction, 0.0), 1.0))

    return report
