"""The supervisor: watches every camera of the running group and restarts what fails.

A thread ticks each camera's health state machine about once a second, and at once
when the group reports a camera event (a death is noticed through the process
sentinel, so a restart starts within milliseconds). Restarts run on their own
threads, one per camera, so a network camera that takes seconds to open never delays
another camera's restart. Every status change goes to the state database (only
changes: no heartbeat writes) and out as a `camera_status` event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from engine.state.store import StateStore
from engine.supervisor.health import CameraHealth, Policy
from engine.wire.events import CameraStatusChanged, Error, Event
from engine.wire.status import CameraStatus

EventSink = Callable[[Event], None]
_RESTART_WAIT_S = 10.0


class Supervisor:
    """Keeps one CameraHealth per camera of the group that `group()` returns."""

    def __init__(self, group: Callable[[], Any], store: StateStore | None, policy: Policy,
                 emit: EventSink, clock: Callable[[], float] = time.monotonic) -> None:
        self._group = group
        self._store = store
        self.policy = policy
        self._emit = emit
        self._clock = clock
        self._health: dict[str, CameraHealth] = {}
        self._restarts: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop ticking and wait for restarts in progress (they end with the group)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        for thread in list(self._restarts.values()):
            thread.join(_RESTART_WAIT_S)

    def forget(self) -> None:
        """A new group: every camera starts afresh (restart counts come from the store)."""
        with self._lock:
            self._health.clear()

    def wake(self) -> None:
        """Tick now (a camera event arrived)."""
        self._wake.set()

    # --- what clients see --------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Per camera: status, since (epoch seconds), restarts, last error."""
        wall_offset = time.time() - self._clock()
        with self._lock:
            return {
                camera_id: {
                    "status": str(health.status),
                    "since": round(health.since + wall_offset, 3),
                    "restarts": health.restarts,
                    "error": health.error,
                }
                for camera_id, health in self._health.items()
            }

    # --- the tick -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.policy.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception as exc:  # a tick must never end supervision
                self._emit(Error(message=f"supervisor: {exc}"))

    def tick(self) -> None:
        """Observe the group once. Ticks run one at a time and read the group's health
        under the lock, so a tick (the thread's, or one a command asked for) never applies
        a view older than one already applied: a camera just stopped stays stopped."""
        group = self._group()
        if group is None:
            return
        with self._lock:
            try:
                health = group.health()
            except Exception:  # the group is being replaced or closed
                return
            now = self._clock()
            in_gate = [c["frames"] for c in health["cameras"].values() if c["member"]]
            lowest = min(in_gate) if in_gate else None
            for camera_id in list(self._health):
                if camera_id not in health["cameras"]:
                    del self._health[camera_id]
            for camera_id, camera in health["cameras"].items():
                tracker = self._tracker(camera_id, now)
                reason = tracker.observe(now, camera, health["held"], lowest)
                if reason is not None:
                    self._restart(group, tracker, reason, now)

    def _tracker(self, camera_id: str, now: float) -> CameraHealth:
        tracker = self._health.get(camera_id)
        if tracker is None:
            row = self._store.camera(camera_id) if self._store else None
            tracker = CameraHealth(camera_id, self.policy, self._status_changed, now,
                                   restarts=int(row["restarts"]) if row else 0)
            self._health[camera_id] = tracker
        return tracker

    def _restart(self, group: Any, tracker: CameraHealth, reason: str, now: float) -> None:
        camera_id = tracker.camera_id
        tracker.restart_started(now, reason)
        if self._store is not None:
            self._store.count_restart(camera_id, reason)
        thread = threading.Thread(target=self._carry_out, args=(group, tracker, reason),
                                  name=f"restart-{camera_id}", daemon=True)
        self._restarts[camera_id] = thread
        thread.start()

    def _carry_out(self, group: Any, tracker: CameraHealth, reason: str) -> None:
        error = None
        try:
            group.restart_camera(tracker.camera_id, reason)
        except Exception as exc:  # GroupError with the reason, or a group being closed
            error = str(exc)
        with self._lock:
            tracker.restart_finished(self._clock(), error)
        self._wake.set()

    def _status_changed(self, camera_id: str, status: CameraStatus, error: str | None) -> None:
        if self._store is not None:
            self._store.set_status(camera_id, str(status), error)
        self._emit(CameraStatusChanged(camera=camera_id, status=str(status), error=error))
