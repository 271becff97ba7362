"""Waiting on a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout_s: float = 15.0,
    what: str = "the condition",
    *,
    step_s: float = 0.05,
) -> T:
    """Poll predicate until it returns something true and return that, so a test can wait
    for a value and use it; after timeout_s, fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(step_s)
    return value
