"""One camera's health: the state machine the supervisor ticks about once a second.

Pure logic on an injected clock. Each tick it reads what the capture group reports
about the camera (process alive, in the sync gate, reconnecting, frame count) and
answers with the camera's status and whether to restart it now:

- process died or failed to open        -> CRASHED, restart at once (then back off);
- in the gate but no frame for the stall timeout, while it is the camera the others
  wait for                               -> STALLED, restart;
- stream lost, the process reconnecting -> RECONNECTING; no action for a short
  outage, CRASHED past `reconnect_crash_after_s`, a forced restart past
  `reconnect_restart_after_s`.

Restarts back off (1 s doubling to 60 s after the first, which is immediate) and at
most `restart_limit` happen in any `restart_window_s`, so a dead camera cannot flap.
A camera that ran for a whole window is forgiven its earlier failures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.option import option
from engine.wire.status import CameraStatus


@dataclass(frozen=True)
class Policy:
    """The supervisor's thresholds (rig `[supervisor]` table); seconds unless named."""

    interval_s: float = field(
        default=1.0, metadata=option("how often every camera's health is checked", above=0))
    stall_timeout_s: float | None = field(default=None, metadata=option(
        "a camera without a frame this long is restarted "
        "(default: max(min_stall_timeout_s, 10 frame periods))", above=0))
    min_stall_timeout_s: float = field(
        default=2.0, metadata=option("the shortest default stall timeout", above=0))
    reconnect_crash_after_s: float = field(default=30.0, metadata=option(
        "a network camera reconnecting this long is marked crashed", above=0))
    reconnect_restart_after_s: float = field(default=60.0, metadata=option(
        "... and restarted when reconnecting this long", above=0,
        at_least="reconnect_crash_after_s"))
    backoff_initial_s: float = field(default=1.0, metadata=option(
        "the delay before the second restart (the first is at once); it doubles", minimum=0))
    backoff_max_s: float = field(
        default=60.0, metadata=option("the longest delay between restarts", above=0))
    restart_limit: int = field(
        default=5, metadata=option("at most this many restarts in restart_window_s", minimum=1))
    restart_window_s: float = field(
        default=60.0, metadata=option("the window restart_limit counts in", above=0))

    def stall_timeout(self, fps: float) -> float:
        """How long a camera in the gate may go without a frame. A camera waits in the
        gate for a frame a few of its frame periods at most (a free-running one then
        repeats its last frame, or leaves the gate when its stream failed: a network
        camera reconnects outside it), so this is the same for every kind of camera:
        what exceeds it is a camera that hangs."""
        if self.stall_timeout_s is not None:
            return self.stall_timeout_s
        return max(self.min_stall_timeout_s, 10.0 / max(fps, 1e-3))

    def backoff(self, failures: int) -> float:
        """Delay before the next restart after `failures` restarts that did not last."""
        if failures <= 0:
            return 0.0
        return min(self.backoff_initial_s * 2 ** (failures - 1), self.backoff_max_s)


StatusListener = Callable[[str, CameraStatus, "str | None"], None]


class CameraHealth:
    """The state machine of one camera. `observe` once per tick; `restart_started` /
    `restart_finished` around each restart the supervisor carries out."""

    def __init__(self, camera_id: str, policy: Policy, on_status: StatusListener,
                 now: float, status: CameraStatus = CameraStatus.STARTING,
                 restarts: int = 0) -> None:
        self.camera_id = camera_id
        self.policy = policy
        self._on_status = on_status
        self.status = status
        self.since = now
        self.error: str | None = None
        self.restarting = False
        self.restarts = restarts
        self._frames: int | None = None
        self._progress_at = now
        self._running_since: float | None = None
        self._lost_since: float | None = None
        self._failures = 0
        self._attempts: deque[float] = deque()
        self._next_restart_at: float | None = None

    # --- the tick --------------------------------------------------------------------

    def observe(self, now: float, camera: dict[str, Any], held: bool, lowest: int | None
                ) -> str | None:
        """Take one look at the camera; returns the reason to restart it now, or None.

        `held`: the group is paused or gathered, so no camera is expected to advance.
        `lowest`: the smallest frame count in the gate (the frame everyone waits for).
        """
        if camera["stopped"]:
            self._forgive()
            self._set(now, CameraStatus.STOPPED, None)
            return None
        if self.restarting:
            return None
        if camera["lost"] and camera["alive"]:
            return self._reconnecting(now)
        self._lost_since = None
        if not camera["alive"]:
            if self.status is not CameraStatus.CRASHED:  # a failed restart already said so
                self._set(now, CameraStatus.CRASHED, camera["error"] or self.error)
            return self._due(now, camera["error"] or "camera process died")
        if not camera["member"]:
            return None  # opening or joining
        return self._in_gate(now, camera, held, lowest)

    def _reconnecting(self, now: float) -> str | None:
        if self._lost_since is None:
            self._lost_since = now
        outage = now - self._lost_since
        policy = self.policy
        if outage >= policy.reconnect_restart_after_s:
            return self._due(now, f"no stream for {outage:.0f} s")
        if outage >= policy.reconnect_crash_after_s:
            self._set(now, CameraStatus.CRASHED,
                      f"no stream for {policy.reconnect_crash_after_s:g} s")
        else:
            self._set(now, CameraStatus.RECONNECTING, "stream lost")
        return None

    def _in_gate(self, now: float, camera: dict[str, Any], held: bool,
                 lowest: int | None) -> str | None:
        frames = int(camera["frames"])
        if self.status is CameraStatus.STARTING:  # it passed the start-up barrier
            self._set(now, CameraStatus.RUNNING, None)
        if frames != self._frames or held:
            if self._frames is not None and frames != self._frames:
                self._set(now, CameraStatus.RUNNING, None)
            self._frames, self._progress_at = frames, now
        if self.status is CameraStatus.RUNNING:
            if self._running_since is None:
                self._running_since = now
            elif now - self._running_since >= self.policy.restart_window_s:
                self._forgive()
        quiet_s = now - self._progress_at
        timeout = self.policy.stall_timeout(camera["fps"])
        if quiet_s >= timeout and (lowest is None or frames <= lowest):
            self._set(now, CameraStatus.STALLED, f"no frame for {quiet_s:.1f} s")
            return self._due(now, f"no frame for {quiet_s:.1f} s")
        return None

    # --- restarts ----------------------------------------------------------------------

    def _due(self, now: float, reason: str) -> str | None:
        """Whether a restart may happen now, given the backoff and the cap."""
        if self._next_restart_at is None:
            at = now + self.policy.backoff(self._failures)
            window_start = now - self.policy.restart_window_s
            while self._attempts and self._attempts[0] <= window_start:
                self._attempts.popleft()
            if len(self._attempts) >= self.policy.restart_limit:
                at = max(at, self._attempts[0] + self.policy.restart_window_s)
            self._next_restart_at = at
        return reason if now >= self._next_restart_at else None

    @property
    def next_restart_at(self) -> float | None:
        return self._next_restart_at

    def restart_started(self, now: float, reason: str) -> None:
        self.restarting = True
        self.restarts += 1
        self._attempts.append(now)
        self._failures += 1
        self._next_restart_at = None
        self._running_since = None
        self._set(now, CameraStatus.RESTARTING, reason)

    def restart_finished(self, now: float, error: str | None) -> None:
        """The new process joined the group (error None) or could not start."""
        self.restarting = False
        self._lost_since = None
        self._frames, self._progress_at = None, now
        if error is None:
            self._set(now, CameraStatus.RUNNING, None)
        else:
            self._set(now, CameraStatus.CRASHED, error)

    def _forgive(self) -> None:
        self._failures = 0
        self._next_restart_at = None
        self._running_since = None

    def _set(self, now: float, status: CameraStatus, error: str | None) -> None:
        if status is self.status and (error is None or error == self.error):
            return
        if status is not self.status:
            self.since = now
            if status is not CameraStatus.RUNNING:
                self._running_since = None
        self.status = status
        if error is not None or status in (CameraStatus.RUNNING, CameraStatus.STOPPED):
            self.error = error
        self._on_status(self.camera_id, status, error)
