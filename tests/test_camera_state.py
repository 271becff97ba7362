"""The camera state machine of the capture controller: every allowed transition, every
refused one, and how each state reads (no processes needed)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from engine.capture.camera_handle import (
    ALLOWED,
    CameraHandle,
    CameraState,
    IllegalTransition,
    Roster,
    WriterHandle,
)
from engine.capture.errors import GroupError
from engine.specs import CameraSpec
from engine.wire.status import CameraStatus

S = CameraState


class FakeProcess:
    def is_alive(self) -> bool:
        return True


def handle(state: CameraState, camera_id: str = "cam0", index: int = 0) -> CameraHandle:
    camera = CameraHandle(CameraSpec(camera_id), index, WriterHandle(None, None))  # type: ignore[arg-type]
    camera.state = state
    return camera


def move(camera: CameraHandle, to: CameraState) -> Any:
    """Ask for the transition to `to` the way the controller does."""
    if to is S.STARTING:
        return camera.spawned(FakeProcess(), object())  # type: ignore[arg-type]
    if to is S.RUNNING:
        return camera.admitted(7)
    if to is S.LOST:
        return camera.lost()
    if to is S.FAILED:
        return camera.fail("boom")
    return camera.stop()


ALLOWED_PAIRS = [(a, b) for a, targets in ALLOWED.items() for b in sorted(targets, key=str)]
# Reports that come too late are ignored rather than refused: a failure of a camera that
# already failed or stopped, a lost stream of one that is not in the gate or starting.
IGNORED = {(S.FAILED, S.FAILED), (S.STOPPED, S.FAILED), (S.STOPPED, S.STOPPED),
           (S.LOST, S.LOST), (S.FAILED, S.LOST), (S.STOPPED, S.LOST)}
REFUSED = [(a, b) for a, b in itertools.product(S, S)
           if b not in ALLOWED[a] and (a, b) not in IGNORED]


def test_every_state_has_its_transitions_declared():
    assert set(ALLOWED) == set(S)
    for state in S:  # every state can be reached and left
        assert ALLOWED[state]
        assert any(state in targets for targets in ALLOWED.values())


@pytest.mark.parametrize(("start", "to"), ALLOWED_PAIRS, ids=lambda s: s.value)
def test_allowed_transitions_are_made(start, to):
    camera = handle(start)
    move(camera, to)
    assert camera.state is to


@pytest.mark.parametrize(("start", "to"), REFUSED, ids=lambda s: s.value)
def test_illegal_transitions_are_refused_and_change_nothing(start, to):
    camera = handle(start)
    with pytest.raises(IllegalTransition, match=f"from {start.value} to {to.value}"):
        move(camera, to)
    assert camera.state is start
    assert issubclass(IllegalTransition, GroupError)  # callers handle it like any refusal


@pytest.mark.parametrize(("start", "to"), sorted(IGNORED, key=str), ids=lambda s: s.value)
def test_late_reports_are_ignored(start, to):
    camera = handle(start)
    camera.error = "first reason"
    assert move(camera, to) is None
    assert camera.state is start
    assert camera.error == "first reason"


def test_a_failure_of_a_replaced_process_is_ignored():
    camera = handle(S.STOPPED)
    camera.spawned(FakeProcess(), object())  # type: ignore[arg-type]
    assert camera.fail("old process died", process=FakeProcess()) is None
    assert camera.state is S.STARTING
    assert camera.fail("died", process=camera.process) is S.STARTING
    assert (camera.state, camera.error) == (S.FAILED, "died")


def test_a_new_process_clears_the_error_and_the_old_replies():
    camera = handle(S.FAILED)
    camera.error = "crashed"
    camera.replies.put(object())  # type: ignore[arg-type]
    camera.spawned(FakeProcess(), object())  # type: ignore[arg-type]
    assert camera.error is None and camera.replies.empty()


@pytest.mark.parametrize(("state", "status", "member", "listening"), [
    (S.STARTING, CameraStatus.STARTING, False, True),
    (S.RUNNING, CameraStatus.RUNNING, True, True),
    (S.LOST, CameraStatus.RECONNECTING, False, True),
    (S.FAILED, CameraStatus.FAILED, False, False),
    (S.STOPPED, CameraStatus.STOPPED, False, False),
], ids=lambda v: getattr(v, "value", str(v)))
def test_each_state_reads_one_way(state, status, member, listening):
    camera = handle(state)
    camera.process = FakeProcess()
    assert camera.status(paused=False) is status
    assert camera.member is member
    assert camera.listening is listening
    assert camera.absence() == status.value
    expected_paused = CameraStatus.PAUSED if member else status
    assert camera.status(paused=True) is expected_paused


def test_a_failed_camera_says_why_it_is_absent():
    camera = handle(S.RUNNING)
    camera.fail("camera process exited (code -9)")
    assert camera.absence() == "camera process exited (code -9)"
    assert camera.status(paused=False).colour == CameraStatus.FAILED.colour


def test_recording_needs_every_camera_that_is_not_stopped():
    roster = Roster()
    roster.cameras = [handle(S.RUNNING, "a", 0), handle(S.LOST, "b", 1),
                      handle(S.STOPPED, "c", 2)]
    with pytest.raises(GroupError, match=r"cameras are not running: b \(reconnecting\)"):
        roster.require_running()
    roster.cameras[1].state = S.RUNNING
    roster.require_running()
    assert roster.rows() == [0, 1]
