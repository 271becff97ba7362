"""Each camera's life cycle in a running group: spawn, start-up barrier, join, leave, restart.

The controller's hands: it spawns camera and writer processes, hands a camera its
ring, admits it to the gate at a common frame, and takes it out again when it fails,
loses its stream, is restarted or stopped, while the other cameras run on. It is also
what the Monitor reports process messages and deaths to (a MonitorHandler).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.capture.camera_handle import (
    CameraHandle,
    CameraState,
    Roster,
    WriterHandle,
    await_reply,
)
from engine.capture.errors import GroupError
from engine.capture.gate import Gate
from engine.capture.takes import TakeController
from engine.ipc.messages import (
    Applied,
    ApplySettings,
    Attached,
    AttachRing,
    Failed,
    Opened,
    Reconnected,
    Rejected,
    WriterFinished,
)
from engine.ipc.ring import FrameRing
from engine.sources.base import SettingRejected
from engine.specs import CameraSpec
from engine.wire import events
from engine.workers.camera import camera_main
from engine.workers.writer import writer_main

JOIN_TIMEOUT_S = 5.0
_MAX_RING_BYTES = 512 * 1024 * 1024
_MIN_RING_SLOTS = 4


def ring_slots(settings: dict[str, Any], ring_seconds: float) -> int:
    """About ring_seconds of frames, at least a few, at most _MAX_RING_BYTES."""
    frame_bytes = int(settings["width"]) * int(settings["height"]) * 3
    wanted = max(_MIN_RING_SLOTS, math.ceil(float(settings["fps"]) * ring_seconds))
    return max(2, min(wanted, _MAX_RING_BYTES // frame_bytes))



class CameraLifecycle:
    """Starts, admits, parks and restarts the cameras of one group (see the module doc)."""

    def __init__(
        self, context: Any, gate: Gate, roster: Roster, takes: TakeController,
        emit: Callable[[events.Event], None], control: threading.RLock,
        closing: threading.Event, timeout_s: float, ring_seconds: float,
    ) -> None:
        """`control`: the group's lock for anything that gathers it."""
        self._ctx = context
        self.gate = gate
        self._roster = roster
        self.takes = takes
        self._emit = emit
        self._control = control
        self._closing = closing
        self.start_timeout_s = timeout_s
        self.ring_seconds = ring_seconds
        self.joined_at = 0  # frame of the latest join: spreads before it mix old stamps

    def camera(self, camera_id: str) -> CameraHandle:
        camera = self._roster.find(camera_id)
        if camera is None:
            raise GroupError(f"camera {camera_id!r} is not running")
        return camera

    # --- spawning and the start-up barrier ----------------------------------------------

    def spawn_camera(self, camera: CameraHandle) -> None:
        conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=camera_main,
            args=(camera.spec, camera.index, self.gate.name, self.gate.state.n_cameras,
                  child_conn, self.gate.doorbells),
            name=f"camera-{camera.camera_id}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        camera.spawned(process, conn)

    def spawn_writer(self, spec: CameraSpec, index: int) -> WriterHandle:
        conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=writer_main,
            args=(self.gate.name, self.gate.state.n_cameras, index, child_conn,
                  self.gate.doorbells[index]),
            name=f"writer-{spec.camera_id}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return WriterHandle(process, conn)

    def barrier(self, tolerate_failures: bool) -> None:
        """Each camera opens, reports its actual settings, gets a ring sized for them, drains."""
        deadline = time.monotonic() + self.start_timeout_s
        failed = {}
        starting = [c for c in self._roster if c.state is CameraState.STARTING]
        for camera in starting:
            reply = self._await(camera, Opened, deadline)
            if not isinstance(reply, Opened):
                failed[camera.camera_id] = reply.reason
                continue
            camera.described(reply)
        if failed and not tolerate_failures:
            lines = [f"{camera_id}: {reason}" for camera_id, reason in failed.items()]
            raise GroupError("cameras failed to start:\n  " + "\n  ".join(lines), failed)
        opened = [c for c in starting if c.camera_id not in failed]
        if opened:
            self.gate.set_rate(min(float(c.settings["fps"]) for c in opened))
        self.gate.hold_at(0)  # the set clock starts once every camera has its ring
        try:
            for camera in starting:
                if camera.camera_id in failed:
                    self._retire(camera, failed[camera.camera_id])
                else:
                    self._copy_in_step(camera, deadline)
                    self._give_ring(camera, deadline)
                    camera.admitted(0)
        finally:
            self.gate.release()
        self._emit(events.GroupStarted(
            cameras=[c.camera_id for c in self._roster if c.member], failed=failed))

    def _copy_in_step(self, camera: CameraHandle, deadline: float) -> None:
        """A camera recorded by copy takes every packet, so it must not be faster than the
        group's sets: one chosen by `record = "auto"` whose rate is above the group's (a
        slower camera sets the pace) is recorded re-encoded instead; its settings say so."""
        rate = self.gate.rate
        if (not camera.stream_template or camera.settings.get("record") != "auto"
                or not rate or float(camera.settings["fps"]) <= rate * 1.01):
            return
        self._command(camera, ApplySettings({"record": "encode"}))
        reply = self._await(camera, Applied, deadline)
        if not isinstance(reply, Applied):
            raise GroupError(f"{camera.camera_id}: {reply.reason}")
        camera.described(reply)

    def _give_ring(self, camera: CameraHandle, deadline: float) -> None:
        shape = (int(camera.settings["height"]), int(camera.settings["width"]),
                 int(camera.settings.get("channels", 3)))  # 1: a mono camera
        old_ring = camera.ring
        camera.ring = FrameRing.create(ring_slots(camera.settings, self.ring_seconds), shape,
                                       packets=bool(camera.stream_template))
        self._command(camera, AttachRing(camera.ring.name))
        reply = self._await(camera, Attached, deadline)
        if old_ring is not None:
            old_ring.close()
        if not isinstance(reply, Attached):
            raise GroupError(f"{camera.camera_id}: {reply.reason}")

    def _command(self, camera: CameraHandle, message: AttachRing | ApplySettings) -> None:
        """Send a command and bump the camera's command counter so its loop reads it."""
        assert camera.conn is not None
        with camera.send_lock:
            camera.conn.send(message)
            self.gate.command_sent(camera.index)

    def _await(self, camera: CameraHandle, wanted: type, deadline: float) -> Any:
        return await_reply(camera.replies, (wanted,), deadline, self._closing,
                           self.start_timeout_s)

    # --- what the monitor reports (MonitorHandler) ----------------------------------------

    def camera_failed(self, camera: CameraHandle, reason: str, process: Any) -> None:
        """A camera's process failed: end the recording at the last frame set all cameras
        published, and park the camera so the others run on."""
        if self._closing.is_set():
            return
        previous = camera.fail(reason, process)
        if previous is None:
            return
        self.gate.mark_failed(camera.index)
        camera.replies.put(Failed(reason))
        self._emit(events.CameraFailed(camera=camera.camera_id, message=reason))
        self._leave(camera, previous, f"{camera.camera_id} failed: {reason}")

    def camera_lost(self, camera: CameraHandle, reason: str) -> None:
        """The camera's stream dropped and its process is reconnecting outside the gate."""
        previous = camera.lost()
        if previous is None:
            return
        self._emit(events.CameraLost(camera=camera.camera_id, message=reason))
        self._leave(camera, previous, reason)

    def camera_reconnected(self, camera: CameraHandle, message: Reconnected) -> None:
        self._emit(events.CameraReconnected(camera=camera.camera_id))
        threading.Thread(target=self._rejoin, args=(camera, message), name="rejoin",
                         daemon=True).start()

    def writer_finished(self, camera: CameraHandle, outcome: WriterFinished) -> None:
        self.takes.writer_finished(camera, outcome.error)

    def writer_died(self, camera: CameraHandle) -> None:
        """A dead writer must never hold its ring: release it, end the recording like a
        failed writer, and start a fresh writer for the next recording."""
        writer = camera.writer
        writer.alive = False
        writer.process.join(1.0)  # its sentinel fired: reap it, so the exit code is known
        reason = f"recording writer exited (code {writer.process.exitcode})"
        if camera.ring is not None:
            camera.ring.cursor = -1
        writer.replies.put(Failed(f"{camera.camera_id}: {reason}"))
        self._emit(events.WriterFailed(camera=camera.camera_id, message=reason))
        self.takes.writer_died(camera, reason)  # the take names the camera itself
        if not self._closing.is_set():
            writer.conn.close()
            camera.writer = self.spawn_writer(camera.spec, camera.index)

    def _leave(self, camera: CameraHandle, previous: CameraState, reason: str) -> None:
        """Take a camera that no longer grabs out of the group: a recording ends at the
        last frame set it completed, then its gate cells are parked."""
        was_member = previous is CameraState.RUNNING
        if was_member:
            self.takes.camera_left(reason, [*self._roster.rows(), camera.index])
        self.park(camera, was_member)

    def park(self, camera: CameraHandle, was_member: bool) -> None:
        """Neutral gate cells; a camera that was in the gate keeps the count it reached."""
        count = self.gate.park(camera.index)
        if was_member:
            camera.count = count

    def _set_group_rate(self) -> None:
        """Frame sets come at the slowest member's rate (a recording's files say so too)."""
        members = self._roster.members()
        if members:
            self.gate.set_rate(min(float(c.settings["fps"]) for c in members))

    def _gather(self) -> int:
        return self.gate.gather(self._roster.rows(), self._roster.idle_frame())

    # --- settings ----------------------------------------------------------------------

    def apply_settings(self, camera_id: str | None, changes: dict[str, Any]) -> dict[str, dict]:
        """Apply changes to one camera (or all, camera_id None) while the group is held.

        Returns the settings actually in effect per camera. A rejected change raises
        SettingRejected with the reason; cameras changed before it keep their change.
        Size and fps cannot change during a recording (every file keeps one geometry).
        """
        targets = [c for c in self._roster if camera_id is None or c.camera_id == camera_id]
        if not targets:
            raise GroupError(f"unknown camera {camera_id!r}")
        with self._control:
            self._roster.require_running(targets)
            if self.takes.recording is not None and {"width", "height", "fps"} & set(changes):
                raise SettingRejected("size and fps cannot change during a recording")
            self._gather()
            try:
                applied = {}
                for camera in targets:
                    deadline = time.monotonic() + self.start_timeout_s
                    self._command(camera, ApplySettings(dict(changes)))
                    reply = self._await(camera, Applied, deadline)
                    if isinstance(reply, Rejected):
                        raise SettingRejected(f"{camera.camera_id}: {reply.reason}")
                    if not isinstance(reply, Applied):
                        raise GroupError(f"{camera.camera_id}: {reply.reason}")
                    camera.described(reply)
                    camera.keep_changes(changes)
                    if reply.reshape:
                        self._give_ring(camera, deadline)
                        self._emit(events.RingRecreated(camera=camera.camera_id))
                    applied[camera.camera_id] = camera.settings
                return applied
            finally:
                self._set_group_rate()
                self.gate.release()

    # --- one camera's life cycle, while the others run on --------------------------------

    def restart_camera(self, camera_id: str, reason: str = "restart") -> None:
        """(Re)start one camera's process; it joins the running group at a common frame.

        A camera still in the group leaves it first (a recording ends at the last frame
        set it completed). Raises GroupError with the reason if the new process cannot
        open its source; the camera then stays parked with that error.
        """
        camera = self.camera(camera_id)
        with camera.lifecycle_lock:
            if self._closing.is_set():
                raise GroupError("the capture group is closing")
            self._retire(camera, reason)
            self.spawn_camera(camera)
            deadline = time.monotonic() + self.start_timeout_s
            reply = self._await(camera, Opened, deadline)
            if not isinstance(reply, Opened):
                self._retire(camera, reply.reason)
                raise GroupError(f"{camera_id}: {reply.reason}")
            self._admit(camera, reply, deadline)

    def stop_camera(self, camera_id: str) -> None:
        """End one camera's process and free its ring; the others run on. A recording
        ends first. Displays learn from CameraStopped that its ring is gone."""
        camera = self.camera(camera_id)
        with camera.lifecycle_lock:
            self._retire(camera, "stopped")
            camera.stop()
            if camera.ring is not None:
                camera.ring.close()
                camera.ring = None
        self._emit(events.CameraStopped(camera=camera_id))

    def _retire(self, camera: CameraHandle, reason: str) -> None:
        """End the camera's process, if any, and park it (a member leaves the group)."""
        process = camera.process
        previous = camera.fail(reason)  # from now on the monitor ignores this process
        if process is not None and process.is_alive():
            process.kill()
            process.join(JOIN_TIMEOUT_S)
        if previous is not None:
            self._leave(camera, previous, f"{camera.camera_id}: {reason}")
        else:
            self.park(camera, was_member=False)
        if camera.conn is not None:
            camera.conn.close()
        camera.process, camera.conn = None, None

    def _rejoin(self, camera: CameraHandle, reply: Reconnected) -> None:
        """A reconnected camera takes its place again (unless a restart replaces it)."""
        if not camera.lifecycle_lock.acquire(blocking=False):
            return
        try:
            self._admit(camera, reply, time.monotonic() + self.start_timeout_s)
        except GroupError as exc:
            self._emit(events.Error(message=f"{camera.camera_id} could not rejoin: {exc}"))
        finally:
            camera.lifecycle_lock.release()

    def _admit(self, camera: CameraHandle, reply: Opened | Reconnected, deadline: float) -> None:
        """Give an opened camera a ring and its place in the gate at the next common frame."""
        camera.described(reply)
        recording = self.takes.recording  # one this camera left: its writers finish first
        if recording is not None and not recording.writers_done.wait(self.start_timeout_s):
            raise GroupError(f"recording {recording.folder} did not finish")
        with self._control:
            frame = self._gather()
            try:
                self.gate.place(camera.index, frame)
                self._copy_in_step(camera, deadline)
                self._give_ring(camera, deadline)
                camera.admitted(frame)
                self.joined_at = max(self.joined_at, frame)
            except BaseException:
                self.park(camera, was_member=False)
                raise
            finally:
                self._set_group_rate()
                self.gate.release()
        self._emit(events.CameraJoined(camera=camera.camera_id, frame=frame))
        self._emit(events.RingRecreated(camera=camera.camera_id))
