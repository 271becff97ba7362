"""Shared fixtures. Every test is checked for leaked child processes and /dev/shm segments."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytest

from engine.ipc.ring import segment_prefix
from engine.wire.paths import LOG_DIR_ENV
from tests.engines import engine, link  # noqa: F401  (the `engine` and GUI `link` fixtures)
from tests.waiting import wait_for, wait_listening

SHM = Path("/dev/shm")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests need no display


def _segments() -> set[str]:
    """Segments this test process created (other test runs on the machine are not ours)."""
    return {p.name for p in SHM.glob(f"{segment_prefix()}*")} if SHM.exists() else set()


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

    def leftovers() -> tuple[list[psutil.Process], set[str]]:
        processes = [c for c in _children() if c.pid not in children_before]
        return processes, _segments() - segments_before

    with suppress(AssertionError):  # whatever is left is killed and named below
        wait_for(lambda: not any(leftovers()), 5.0, "the block's processes and segments to end")
    leaked, new_segments = leftovers()
    for child in leaked:
        child.kill()
    for name in new_segments:
        (SHM / name).unlink(missing_ok=True)
    assert not leaked, f"leaked processes: {[c.name() for c in leaked]}"
    assert not new_segments, f"leaked shared memory: {sorted(new_segments)}"


@pytest.fixture(autouse=True, scope="session")
def engine_log_folder(tmp_path_factory) -> Iterator[Path]:
    """The engines the tests start log here, never in the user's log folder."""
    folder = tmp_path_factory.mktemp("engine-log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOG_DIR_ENV, str(folder))
        yield folder


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
    missing_requirement(name, "Debian's ffmpeg")


def missing_requirement(what: str, installer: str) -> NoReturn:
    """Skip for a missing system requirement, except in CI, where .ci/run installs it and
    its absence is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI (.ci/run installs {installer})")
    pytest.skip(f"{what} is not installed")


@pytest.fixture
def broker() -> Iterator[Any]:
    """A NATS server on 127.0.0.1 with the rig's token (tests/rig_nodes.py)."""
    from tests.rig_nodes import Broker

    running = Broker()
    try:
        yield running
    finally:
        running.stop()


def free_port() -> int:
    """A TCP port nothing listens on (bound and released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MjpegServers:
    """ffmpeg MJPEG-over-HTTP servers on 127.0.0.1; each serves a single client."""

    def __init__(self, ffmpeg: str) -> None:
        self.ffmpeg = ffmpeg
        self.processes: list[subprocess.Popen] = []

    def start(self, port: int) -> str:
        url = f"http://127.0.0.1:{port}/cam.mjpg"
        # One encoder thread and a flush per frame: a camera's own small delay, not
        # ffmpeg's frame-thread queue (about a frame period, near the sync tolerance).
        command = [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                   "-i", "testsrc=size=320x240:rate=15", "-threads", "1", "-flush_packets", "1",
                   "-f", "mpjpeg", "-listen", "1", url]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        wait_listening(process, port, "ffmpeg")
        return url

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServers]:
    servers = MjpegServers(tool_or_skip("ffmpeg"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """A module that starts threads uses this: none may outlive a test."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"leaked threads: {leaked}"


@pytest.fixture
def no_leaked_widgets(qapp: Any) -> Iterator[None]:
    """GUI modules use this: pytest-qt closes the widgets each test added; none may outlive
    it. (Qt is imported here only when a GUI test asks for the fixture.)"""
    import gc

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    before = set(QApplication.topLevelWidgets())
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()  # pyqtgraph's context menus have no Qt parent: Python frees them
    leaked = [w for w in QApplication.topLevelWidgets() if w not in before]
    assert not leaked, f"leaked top-level widgets: {leaked}"
