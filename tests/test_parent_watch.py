"""A spawned process notices its controller's death even when the controller died while
the process was still starting up (it is then init's child before it first looks)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from engine.ipc.child import ParentWatch
from tests.waiting import wait_for

GIVE_UP_S = 10.0


def _watcher(result: str) -> None:
    time.sleep(0.5)  # the controller is surely gone by now
    watch = ParentWatch()
    deadline = time.monotonic() + GIVE_UP_S
    while watch.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    Path(result).write_text("noticed" if time.monotonic() < deadline else "never noticed")


def _controller_that_dies_at_once(result: str) -> None:
    multiprocessing.get_context("spawn").Process(target=_watcher, args=(result,)).start()
    os._exit(0)  # no clean-up, no join: a crash


def test_a_process_whose_controller_died_during_its_start_notices(tmp_path):
    result = tmp_path / "result"
    controller = multiprocessing.get_context("spawn").Process(
        target=_controller_that_dies_at_once, args=(str(result),))
    controller.start()
    controller.join(10)
    wait_for(result.exists, GIVE_UP_S + 10, "the watcher to report")
    assert result.read_text() == "noticed"
