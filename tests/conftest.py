"""Shared fixtures. Every test is checked for leaked child processes and /dev/shm segments."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

SHM = Path("/dev/shm")


def _segments() -> set[str]:
    return {p.name for p in SHM.glob("psm_*")} if SHM.exists() else set()


def _children() -> list[psutil.Process]:
    """Our live child processes, except multiprocessing's long-lived resource tracker."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if any("resource_tracker" in part for part in child.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        found.append(child)
    return found


@contextmanager
def leak_guard():
    """Fail if the block leaves processes or shared memory behind; clean them up either way."""
    segments_before = _segments()
    children_before = {c.pid for c in _children()}
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [c for c in _children() if c.pid not in children_before]
        new_segments = _segments() - segments_before
        if (not leaked and not new_segments) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for child in leaked:
        child.kill()
    for name in new_segments:
        (SHM / name).unlink(missing_ok=True)
    assert not leaked, f"leaked processes: {[c.name() for c in leaked]}"
    assert not new_segments, f"leaked shared memory: {sorted(new_segments)}"


# Fixtures that keep processes alive across tests guard themselves for their whole scope.
SHARED_PROCESS_FIXTURES = {"group"}


@pytest.fixture(autouse=True)
def no_leaks(request):
    if SHARED_PROCESS_FIXTURES & set(request.fixturenames):
        yield
        return
    with leak_guard():
        yield


def tool_or_skip(name: str) -> str:
    """Path of a system tool; skip without it, except in CI where it must be installed."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required in CI (.ci/run installs Debian's ffmpeg)")
    pytest.skip(f"{name} is not installed")
