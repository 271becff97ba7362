"""The camera health state machine on an injected clock: every rule of the supervisor."""

from __future__ import annotations

from engine.supervisor.health import CameraHealth, Policy
from engine.wire.status import CameraStatus

POLICY = Policy(backoff_initial_s=1.0, backoff_max_s=8.0, restart_limit=3, restart_window_s=30.0,
                reconnect_crash_after_s=30.0, reconnect_restart_after_s=60.0)


def camera(frames=0, *, alive=True, member=True, lost=False, stopped=False, error=None, fps=30.0):
    return {"alive": alive, "member": member, "lost": lost, "stopped": stopped, "frames": frames,
            "error": error, "fps": fps}


class Machine:
    """A CameraHealth and the transitions it reported."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.changes: list[tuple[CameraStatus, str | None]] = []
        self.health = CameraHealth("cam0", policy, lambda _id, s, e: self.changes.append((s, e)),
                                   now=0.0)

    def look(self, now, seen, held=False, lowest=None):
        return self.health.observe(now, seen, held, lowest)

    def restart(self, now, reason="x", error=None):
        self.health.restart_started(now, reason)
        self.health.restart_finished(now, error)


def test_frames_make_a_camera_running_and_a_death_restarts_at_once():
    m = Machine()
    assert m.look(0.0, camera(0)) is None
    assert m.look(1.0, camera(30)) is None
    assert m.health.status is CameraStatus.RUNNING
    assert m.look(1.5, camera(45, alive=False, member=False, error="exited")) == "exited"
    assert m.changes[-1] == (CameraStatus.CRASHED, "exited")
    m.health.restart_started(1.5, "exited")
    assert m.health.status is CameraStatus.RESTARTING and m.health.restarts == 1
    m.health.restart_finished(2.5, None)
    assert m.health.status is CameraStatus.RUNNING


def test_restarts_back_off_doubling_to_the_maximum():
    m = Machine(Policy(backoff_initial_s=1.0, backoff_max_s=8.0, restart_limit=100))
    dead = camera(alive=False, member=False, error="gone")
    now, waits = 0.0, []
    for _ in range(6):
        reason = m.look(now, dead)
        first_try = now
        while reason is None:
            now += 0.25
            reason = m.look(now, dead)
        waits.append(now - first_try)
        m.restart(now, reason, error="still gone")
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_at_most_the_limit_of_restarts_in_a_window():
    m = Machine(Policy(backoff_initial_s=0.0, backoff_max_s=0.0, restart_limit=3,
                       restart_window_s=30.0))
    dead = camera(alive=False, member=False, error="gone")
    starts = []
    now = 0.0
    while now < 65:
        if m.look(now, dead):
            starts.append(now)
            m.restart(now, error="still gone")
        now += 0.5
    assert starts[:3] == [0.0, 0.5, 1.0]
    assert starts[3] == 30.0  # the window of the first one has passed
    assert all(later - earlier >= 30.0 for earlier, later in zip(starts, starts[3:], strict=False))


def test_a_camera_that_ran_a_whole_window_is_forgiven():
    m = Machine()
    dead = camera(alive=False, member=False, error="gone")
    for now in (0.0, 1.0):  # two quick failures: the next would wait 2 s
        while not m.look(now, dead):
            now += 0.25
        m.restart(now)
    frames = 0
    for now in range(2, 40):
        frames += 30
        m.look(float(now), camera(frames))
    assert m.look(40.0, dead) == "gone"  # immediate again


def test_no_frame_for_the_stall_timeout_restarts_the_camera_the_others_wait_for():
    m = Machine()
    m.look(0.0, camera(0))
    m.look(1.0, camera(30))
    assert m.look(2.9, camera(30), lowest=30) is None
    assert m.look(3.1, camera(30), lowest=30) == "no frame for 2.1 s"
    assert m.health.status is CameraStatus.STALLED


def test_a_camera_waiting_for_a_slower_one_is_not_stalled():
    m = Machine()
    m.look(0.0, camera(10))
    assert m.look(5.0, camera(11), lowest=10) is None  # it advanced once, then waits
    assert m.look(9.0, camera(11), lowest=10) is None
    assert m.health.status is CameraStatus.RUNNING


def test_a_held_group_is_not_stalled():
    m = Machine()
    m.look(0.0, camera(30))
    for now in range(1, 20):
        assert m.look(float(now), camera(30), held=True, lowest=30) is None


def test_the_stall_timeout_is_ten_periods_and_at_least_two_seconds():
    """The same for a network camera: it no longer blocks the gate for its read timeout
    and a reconnect (it leaves the gate instead), so it gets no longer."""
    policy = Policy()
    assert policy.stall_timeout(30.0) == 2.0
    assert policy.stall_timeout(2.0) == 5.0
    assert Policy(stall_timeout_s=0.5).stall_timeout(30.0) == 0.5


def test_reconnecting_is_debounced_then_crashed_then_restarted():
    m = Machine()
    m.look(0.0, camera(0))
    lost = camera(30, lost=True, member=False)
    assert m.look(1.0, lost) is None
    assert m.health.status is CameraStatus.RECONNECTING
    assert m.look(29.0, lost) is None and m.health.status is CameraStatus.RECONNECTING
    assert m.look(31.5, lost) is None and m.health.status is CameraStatus.CRASHED
    assert m.look(60.5, lost) is None and m.health.status is CameraStatus.CRASHED
    assert m.look(61.0, lost) == "no stream for 60 s"


def test_a_short_outage_ends_running_without_a_restart():
    m = Machine()
    m.look(0.0, camera(0))
    m.look(1.0, camera(30, lost=True, member=False))
    m.look(3.0, camera(30, member=True))  # rejoined at a common frame
    m.look(4.0, camera(60))
    assert [s for s, _ in m.changes] == [CameraStatus.RUNNING, CameraStatus.RECONNECTING,
                                         CameraStatus.RUNNING]
    assert m.health.restarts == 0


def test_a_stopped_camera_is_never_restarted():
    m = Machine()
    for now in range(100):
        assert m.look(float(now), camera(alive=False, member=False, stopped=True)) is None
    assert m.changes == [(CameraStatus.STOPPED, None)]


def test_status_changes_are_reported_once():
    m = Machine()
    dead = camera(alive=False, member=False, error="gone")
    for now in range(5):
        m.look(now * 0.1, dead)
    assert m.changes == [(CameraStatus.CRASHED, "gone")]


def test_a_failed_restart_says_crashed_once():
    """Each failed restart during back-off used to say `crashed` twice: once with the
    restart's error, then again with the process's (other) wording of it."""
    m = Machine()
    dead = camera(alive=False, member=False, error="cam0 exited")
    assert m.look(0.0, dead) is not None
    m.restart(0.0, "cam0 exited", error="cannot open: busy")
    before = len(m.changes)
    for step in range(1, 8):
        m.look(step * 0.1, dead)
    assert m.changes[before:] == []
    assert m.changes[-1] == (CameraStatus.CRASHED, "cannot open: busy")
