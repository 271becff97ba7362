"""The controller of one capture group: spawns the camera and writer processes and steers them.

Everything that must happen "between frames" (record start / stop, pause, a
settings change) is done by gathering the group: raising the shared hold point
until every camera has published the same frame count and none is grabbing.
Recording boundaries are then plain frame numbers, so every file of a recording
holds exactly the same frames.

A monitor thread receives the processes' events and notices process deaths; a
failed camera ends the active recording at the last complete frame set.

Cameras come and go without stopping the others: a camera that failed, lost its
stream or was stopped is parked (its gate cells hold neutral values, so the rest
of the group runs on), and a restarted camera joins at the group's next common
frame. Recording needs every camera that is not stopped.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from engine.capture.sensor_link import SensorLink
from engine.ipc.control import (
    C_COMMAND_SEQ,
    C_COUNT,
    C_DROPPED,
    C_ERROR,
    C_GRABBING,
    C_READY,
    G_FIRST_RECORDING,
    G_HOLD_AT,
    G_LAST_RECORDING,
    G_STOP,
    GRAB_HISTORY,
    NO_HOLD,
    PARKED,
    GroupState,
)
from engine.ipc.ring import FrameRing, sweep_stale_segments
from engine.recording.errors import RecordingError
from engine.recording.session import DEFAULT_CHUNK_LENGTH_S, Recording
from engine.sensors.base import SensorError
from engine.sensors.factory import validate_sensor
from engine.sources import mask_credentials, parse_source, validate_size_fps
from engine.sources.base import SettingRejected, SourceError
from engine.specs import CameraSpec, SensorSpec
from engine.wire.events import EVENTS, Event
from engine.workers.camera import camera_main
from engine.workers.writer import RecordJob, writer_main

_GATHER_POLL_S = 0.0005
_FENCE_S = 0.001
_MONITOR_POLL_S = 0.1
_JOIN_TIMEOUT_S = 5.0
_MAX_RING_BYTES = 512 * 1024 * 1024
_MIN_RING_SLOTS = 4

EventHandler = Callable[[Event], None]


class GroupError(RuntimeError):
    """The group cannot do what was asked; the message names the camera and the reason.

    `failed` maps the ids of cameras that could not start to their reasons.
    """

    def __init__(self, message: str, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or {}


@dataclass
class _Camera:
    """The controller's handle on one camera and its writer.

    `process` is None while the camera is stopped. `member`: in the sync gate.
    `error`: why the current process failed (None while it is healthy). `lost`: the
    process is reconnecting a dropped stream outside the gate. `count`: frames
    published, kept while the camera is parked.
    """

    spec: CameraSpec
    index: int
    process: Any
    conn: Connection | None
    writer: Any
    writer_conn: Connection
    replies: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)
    writer_replies: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    lifecycle: threading.Lock = field(default_factory=threading.Lock)
    ring: FrameRing | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    properties: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    writer_alive: bool = True
    member: bool = False
    lost: bool = False
    stopped: bool = False
    count: int = 0


def ring_slots(settings: dict[str, Any], ring_seconds: float) -> int:
    """About ring_seconds of frames, at least a few, at most _MAX_RING_BYTES."""
    frame_bytes = int(settings["width"]) * int(settings["height"]) * 3
    wanted = max(_MIN_RING_SLOTS, math.ceil(float(settings["fps"]) * ring_seconds))
    return max(2, min(wanted, _MAX_RING_BYTES // frame_bytes))


def validate_specs(cameras: list[CameraSpec]) -> None:
    """Reject a rig before any process starts: the message names the camera and problem."""
    if not cameras:
        raise GroupError("no cameras given")
    seen: set[str] = set()
    for spec in cameras:
        if not spec.camera_id or "/" in spec.camera_id or spec.camera_id in seen:
            raise GroupError(f"camera id {spec.camera_id!r} is empty, has a '/' or is repeated")
        seen.add(spec.camera_id)
        try:
            parse_source(spec.source)
            validate_size_fps(spec.width, spec.height, spec.fps)
        except (SourceError, ValueError) as exc:
            raise GroupError(f"{spec.camera_id}: {exc}") from exc


class CaptureGroup:
    """N cameras in lock-step with one writer each. Use as a context manager."""

    def __init__(
        self,
        cameras: list[CameraSpec],
        *,
        sensors: list[SensorSpec] | None = None,
        ring_seconds: float = 1.0,
        start_timeout_s: float = 30.0,
        on_event: EventHandler | None = None,
        stopped: set[str] | None = None,
        tolerate_failures: bool = False,
    ) -> None:
        """`stopped`: cameras that stay parked until start_camera. With
        `tolerate_failures`, cameras that cannot open are parked with their error
        (for a supervisor to restart) instead of failing the start."""
        validate_specs(cameras)
        for sensor in sensors or []:
            try:
                validate_sensor(sensor)
            except (SensorError, ValueError) as exc:
                raise GroupError(f"sensor {sensor.name!r}: {exc}") from exc
        self.specs = list(cameras)
        self._initially_stopped = set(stopped or ())
        self._tolerate_failures = tolerate_failures
        self.sensor_specs = list(sensors or [])
        self._sensors: list[SensorLink] = []
        self.ring_seconds = ring_seconds
        self.start_timeout_s = start_timeout_s
        self._on_event = on_event
        self._ctx = mp.get_context("spawn")
        self._cameras: list[_Camera] = []
        self._state: GroupState | None = None
        self._control = threading.RLock()
        self._monitor: threading.Thread | None = None
        self._closing = threading.Event()
        self._failure_lock = threading.Lock()
        self._paused = False
        self.recording: Recording | None = None
        self.last_recording: Recording | None = None
        self._assemblers: list[threading.Thread] = []
        self._rate_marks: dict[int, tuple[float, int]] = {}
        self._spread_from = 0

    # --- life cycle ----------------------------------------------------------------

    def __enter__(self) -> CaptureGroup:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def state(self) -> GroupState:
        if self._state is None:
            raise GroupError("the capture group is not running")
        return self._state

    def start(self) -> None:
        """Spawn every process and pass the start-up barrier; on failure clean up and raise."""
        try:
            self._spawn()
            self._barrier()
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        sweep_stale_segments()
        self._state = GroupState.create(len(self.specs))
        for index, spec in enumerate(self.specs):
            writer, writer_conn = self._start_writer(spec, index)
            camera = _Camera(spec, index, None, None, writer, writer_conn)
            self._cameras.append(camera)
            if spec.camera_id in self._initially_stopped:
                camera.stopped = True
                self._park(camera)
            else:
                self._start_camera_process(camera)
        self._sensors = [
            SensorLink(spec, self._ctx, self._state.name, len(self.specs), self._emit)
            for spec in self.sensor_specs
        ]
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="group-monitor", daemon=True
        )
        self._monitor.start()

    def _start_camera_process(self, camera: _Camera) -> None:
        conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=camera_main,
            args=(camera.spec, camera.index, self.state.name, len(self.specs), child_conn),
            name=f"camera-{camera.spec.camera_id}",
            daemon=True,
        )
        camera.replies = queue.Queue()
        camera.error, camera.lost, camera.stopped = None, False, False
        process.start()
        child_conn.close()
        camera.process, camera.conn = process, conn

    def _start_writer(self, spec: CameraSpec, index: int) -> tuple[Any, Connection]:
        writer_conn, writer_child_conn = self._ctx.Pipe()
        writer = self._ctx.Process(
            target=writer_main,
            args=(index, self.state.name, len(self.specs), writer_child_conn),
            name=f"writer-{spec.camera_id}",
            daemon=True,
        )
        writer.start()
        writer_child_conn.close()
        return writer, writer_conn

    def _barrier(self) -> None:
        """Each camera opens, reports its actual settings, gets a ring sized for them, drains."""
        deadline = time.monotonic() + self.start_timeout_s
        failed = {}
        starting = [c for c in self._cameras if not c.stopped]
        for camera in starting:
            reply = self._await(camera.replies, ("opened",), deadline)
            if reply[0] != "opened":
                failed[camera.spec.camera_id] = str(reply[1])
                continue
            camera.settings, camera.properties = reply[1], reply[2]
        if failed and not self._tolerate_failures:
            lines = [f"{camera_id}: {reason}" for camera_id, reason in failed.items()]
            raise GroupError("cameras failed to start:\n  " + "\n  ".join(lines), failed)
        for camera in starting:
            if camera.spec.camera_id in failed:
                self._retire(camera, failed[camera.spec.camera_id])
            else:
                self._give_ring(camera, deadline)
                camera.member = True
        self._emit("group_started", cameras=[c.spec.camera_id for c in self._cameras if c.member],
                   failed=failed)

    def _give_ring(self, camera: _Camera, deadline: float) -> None:
        shape = (int(camera.settings["height"]), int(camera.settings["width"]), 3)
        old_ring = camera.ring
        camera.ring = FrameRing.create(ring_slots(camera.settings, self.ring_seconds), shape)
        self._command(camera, ("ring", camera.ring.name))
        reply = self._await(camera.replies, ("attached",), deadline)
        if old_ring is not None:
            old_ring.close()
        if reply[0] != "attached":
            raise GroupError(f"{camera.spec.camera_id}: {reply[1]}")

    def close(self) -> None:
        """Finalize any recording, stop every process, free every segment. Safe to repeat."""
        if self.recording is not None and not self._closing.is_set():
            try:
                self.stop_recording()
            except GroupError as exc:
                self._emit("error", message=str(exc))
        self._closing.set()
        for camera in self._cameras:  # a restart in progress gives up and kills its process
            with camera.lifecycle:
                pass
        if self._state is not None:
            self._state.globals[G_STOP] = 1
        for camera in self._cameras:
            with contextlib.suppress(OSError):  # the writer is already gone
                camera.writer_conn.send(("exit", None))
        for sensor in self._sensors:
            sensor.close()
        self._sensors = []
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for camera in self._cameras:
            for process in (camera.process, camera.writer):
                if process is None:
                    continue
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join(1.0)
        if self._monitor is not None:
            self._monitor.join(1.0)
            self._monitor = None
        for camera in self._cameras:
            if camera.conn is not None:
                camera.conn.close()
            camera.writer_conn.close()
            if camera.ring is not None:
                camera.ring.close()
                camera.ring = None
        self._cameras = []
        if self._state is not None:
            self._state.close()
            self._state = None
        for assembler in self._assemblers:  # final files are written even when closing
            assembler.join()
        self._assemblers = []

    # --- messaging -------------------------------------------------------------------

    def _command(self, camera: _Camera, message: tuple[Any, ...]) -> None:
        """Send a command and bump the camera's command counter so its loop reads it."""
        assert camera.conn is not None
        with camera.send_lock:
            camera.conn.send(message)
            self.state.cameras[camera.index, C_COMMAND_SEQ] += 1

    def _await(
        self, replies: queue.Queue[tuple[Any, ...]], kinds: tuple[str, ...], deadline: float
    ) -> tuple[Any, ...]:
        """Next reply of one of kinds, or ("failed", reason) on error, death or timeout."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ("failed", f"no answer within {self.start_timeout_s:.0f} s")
            if self._closing.is_set():
                return ("failed", "the capture group is closing")
            try:
                reply = replies.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if reply[0] in kinds or reply[0] in ("failed", "rejected", "prepare_failed"):
                return reply

    def _emit(self, kind: str, **data: Any) -> None:
        if self._on_event is not None:
            self._on_event(EVENTS.from_wire({"event": kind, "time": time.time(), **data}))

    def _monitor_loop(self) -> None:
        """Dispatch events from every process; notice deaths through process sentinels."""
        while not self._closing.is_set():
            # (camera, kind, process): a restart replaces the process; events of the
            # one it replaced are ignored.
            sources: dict[Any, tuple[_Camera, str, Any]] = {}
            for camera in self._cameras:
                process = camera.process
                if process is not None and camera.error is None:
                    sources[camera.conn] = (camera, "camera", process)
                    sources[process.sentinel] = (camera, "camera_death", process)
                if camera.writer_alive:
                    sources[camera.writer_conn] = (camera, "writer", camera.writer)
                    sources[camera.writer.sentinel] = (camera, "writer_death", camera.writer)
            try:
                ready = wait(list(sources), timeout=_MONITOR_POLL_S)
            except OSError:
                continue
            for handle in ready:
                camera, kind, process = sources[handle]
                if process is not camera.process and process is not camera.writer:
                    continue
                if kind == "camera_death":
                    self._camera_failed(camera, f"camera process exited (code {process.exitcode})",
                                        process)
                elif kind == "writer_death":
                    self._writer_died(camera)
                elif kind == "camera":
                    self._camera_message(camera, process)
                else:
                    self._writer_message(camera)

    def _camera_message(self, camera: _Camera, process: Any) -> None:
        assert camera.conn is not None
        try:
            message = camera.conn.recv()
        except (EOFError, OSError):
            self._camera_failed(camera, "camera process closed its pipe", process)
            return
        if message[0] == "error":
            self._camera_failed(camera, message[1], process)
        elif message[0] == "lost":
            self._camera_lost(camera, message[1])
        elif message[0] == "reconnected":
            self._emit("camera_reconnected", camera=camera.spec.camera_id)
            threading.Thread(target=self._rejoin, args=(camera, message), name="rejoin",
                             daemon=True).start()
        else:
            camera.replies.put(message)

    def _writer_message(self, camera: _Camera) -> None:
        try:
            message = camera.writer_conn.recv()
        except (EOFError, OSError):
            return  # its sentinel reports the death
        if message[0] == "finished":
            self._writer_finished(camera, message[1])
        else:
            camera.writer_replies.put(message)

    def _writer_died(self, camera: _Camera) -> None:
        """A dead writer must never hold its ring: release it, end the recording like a
        failed writer, and start a fresh writer for the next recording."""
        camera.writer_alive = False
        reason = f"{camera.spec.camera_id}: recording writer exited (code {camera.writer.exitcode})"
        if camera.ring is not None:
            camera.ring.cursor = -1
        camera.writer_replies.put(("failed", reason))
        self._emit("writer_failed", camera=camera.spec.camera_id, message=reason)
        recording = self.recording
        if recording is not None and not recording.has_outcome(camera.spec.camera_id):
            self._writer_finished(camera, {"frames": None, "error": reason})
        if not self._closing.is_set():
            self._restart_writer(camera)

    def _restart_writer(self, camera: _Camera) -> None:
        camera.writer_conn.close()
        camera.writer, camera.writer_conn = self._start_writer(camera.spec, camera.index)
        camera.writer_replies = queue.Queue()
        camera.writer_alive = True

    def _camera_failed(self, camera: _Camera, reason: str, process: Any) -> None:
        """A camera's process failed: end the recording at the last frame set all cameras
        published, and park the camera so the others run on."""
        with self._failure_lock:
            if camera.error is not None or process is not camera.process or self._closing.is_set():
                return
            camera.error = reason
        if self._state is not None:
            self._state.cameras[camera.index, C_ERROR] = 1
        camera.replies.put(("failed", reason))
        self._emit("camera_failed", camera=camera.spec.camera_id, message=reason)
        self._leave(camera, f"{camera.spec.camera_id} failed: {reason}")

    def _camera_lost(self, camera: _Camera, reason: str) -> None:
        """The camera's stream dropped and its process is reconnecting outside the gate."""
        camera.lost = True
        self._emit("camera_lost", camera=camera.spec.camera_id, message=reason)
        self._leave(camera, reason)

    def _leave(self, camera: _Camera, reason: str) -> None:
        """Take a camera that no longer grabs out of the group: a recording ends at the
        last frame set it completed, then its gate cells are parked."""
        recording = self.recording
        if recording is not None and camera.member and self._state is not None:
            recording.fail(reason, self._cut(recording))
        if self._state is not None:
            self._park(camera)

    def _park(self, camera: _Camera) -> None:
        """Neutral gate cells: ready, never the lowest count, not grabbing."""
        cells = self.state.cameras[camera.index]
        if camera.member:
            camera.count = int(cells[C_COUNT])
        camera.member = False
        cells[C_COUNT] = PARKED
        cells[C_READY] = 1
        cells[C_GRABBING] = 0

    def _members(self) -> list[_Camera]:
        return [c for c in self._cameras if c.member]

    def _member_rows(self) -> list[int]:
        return [c.index for c in self._cameras if c.member]

    def _cut(self, recording: Recording) -> int:
        """End the recording now, at the last frame set every camera has published (never
        later than an end already chosen); the writers stop there. Returns that frame."""
        last = max(int(self.state.counts[self._member_rows()].min()), recording.first_frame)
        if recording.last_frame is not None:
            last = min(last, recording.last_frame)
        self.state.globals[G_LAST_RECORDING] = last
        return last

    def _writer_finished(self, camera: _Camera, outcome: dict[str, Any]) -> None:
        """A writer is done. One that failed (encoder crash, disk full) ends the recording
        for every camera; assembly then trims all files to the frames they all hold."""
        recording = self.recording
        if recording is None:
            return
        if outcome.get("error") and recording.last_frame is None and self._state is not None:
            recording.last_frame = self._cut(recording)
            self._emit("recording_error", camera=camera.spec.camera_id, message=outcome["error"])
        if recording.add_outcome(camera.spec.camera_id, outcome):
            self._finish_recording(recording)

    # --- gathering the group at a frame boundary --------------------------------------

    def _gather(self, timeout_s: float = 5.0) -> int:
        """Raise the hold point until every camera has published the same count; return it."""
        state = self.state
        rows = self._member_rows()
        if not rows:  # nobody grabs: the common frame is where the last camera stopped
            hold = max((c.count for c in self._cameras), default=0)
            state.globals[G_HOLD_AT] = hold
            return hold
        group = state.globals
        counts, grabbing = state.counts[rows], state.grabbing[rows]  # copies: re-read below
        hold = int((counts + grabbing).max())
        group[G_HOLD_AT] = hold
        deadline = time.monotonic() + timeout_s
        settled_checks = 0
        while settled_checks < 2:
            time.sleep(_FENCE_S if settled_checks else _GATHER_POLL_S)
            counts, grabbing = state.counts[rows], state.grabbing[rows]
            ahead = int((counts + grabbing).max())
            if ahead > hold:  # a camera passed the gate before it saw the hold
                hold = ahead
                group[G_HOLD_AT] = hold
            settled = bool((counts == hold).all() and not grabbing.any())
            settled_checks = settled_checks + 1 if settled else 0
            if time.monotonic() > deadline:
                failed = [c.spec.camera_id for c in self._cameras if c.error is not None]
                self._release()
                raise GroupError(
                    "cameras did not reach a common frame within "
                    f"{timeout_s:.0f} s" + (f" (failed: {', '.join(failed)})" if failed else "")
                )
        return hold

    def _release(self) -> None:
        if not self._paused:
            self.state.globals[G_HOLD_AT] = NO_HOLD

    # --- commands ------------------------------------------------------------------------

    def _require_healthy(self, cameras: list[_Camera] | None = None) -> None:
        """Every camera that should run (or those given) is in the gate."""
        if cameras is None:
            cameras = [c for c in self._cameras if not c.stopped]
        if not cameras:
            raise GroupError("no camera is running")
        out = [f"{c.spec.camera_id} ({_absence(c)})" for c in cameras if not c.member]
        if out:
            raise GroupError("cameras are not running: " + "; ".join(out)
                             + " (stop a camera to go on without it)")

    def start_recording(
        self,
        output_dir: Path,
        codec: str = "h264",
        name: str | None = None,
        *,
        chunk_length_s: float = DEFAULT_CHUNK_LENGTH_S,
        multitrack: bool = False,
        session: dict[str, Any] | None = None,
    ) -> Recording:
        """Start recording every camera at the same frame number; return the recording.

        Every writer opens its files first; only when all are ready is the group
        gathered and the first frame chosen, so nothing is recorded by half the rig.
        A new recording may start while the previous one is still being assembled.
        """
        with self._control:
            if self.recording is not None:
                raise GroupError("a recording is already running")
            self._require_healthy()
            recording = Recording.create(
                Path(output_dir), name, codec, self._recording_cameras(), self._common_fps(),
                chunk_length_s,
            )
            recording.multitrack = multitrack
            recording.session = session
            self._prepare_writers(recording)
            first = self._gather()
            try:
                state = self.state
                for camera in self._members():
                    assert camera.ring is not None
                    camera.ring.cursor = first
                state.globals[G_LAST_RECORDING] = -1
                state.globals[G_FIRST_RECORDING] = first
                recording.begin(first, self._dropped())
                self.recording = recording
                for camera in self._members():
                    camera.writer_conn.send(("start", first))
                for sensor in self._sensors:
                    sensor.record(recording.folder)
            finally:
                self._release()
            self._emit("recording_started", folder=str(recording.folder), first_frame=first)
            return recording

    def _prepare_writers(self, recording: Recording) -> None:
        """Have every writer open its files; on any failure abort all and remove the folder."""
        for camera in self._members():
            while not camera.writer_replies.empty():  # answers that came after a time-out
                camera.writer_replies.get_nowait()
            assert camera.ring is not None
            height, width, _ = camera.ring.shape
            camera.writer_conn.send((
                "prepare",
                RecordJob(
                    camera.ring.name, recording.chunk_folder(camera.spec.camera_id),
                    recording.timestamps_path(camera.spec.camera_id), recording.codec,
                    width, height, recording.fps, recording.chunk_frames,
                ),
            ))
        deadline = time.monotonic() + self.start_timeout_s
        replies = [self._await(c.writer_replies, ("prepared",), deadline) for c in self._members()]
        failures = [str(reply[1]) for reply in replies if reply[0] != "prepared"]
        if failures:
            for camera in self._members():
                with contextlib.suppress(OSError):
                    camera.writer_conn.send(("abort", None))
            recording.discard()
            raise RecordingError("cannot start recording: " + "; ".join(failures))

    def stop_recording(self, timeout_s: float = 120.0, *, assembled: bool = True) -> Recording:
        """End the recording at a common frame; wait until the writers are done, and with
        `assembled` (the default) until the final files are written too."""
        with self._control:
            recording = self.recording
            if recording is None:
                raise GroupError("no recording is running")
            if recording.last_frame is None:
                last = self._gather()
                if last <= recording.first_frame:
                    # Every recording holds at least one frame set; the hold point lets
                    # the group take exactly that one even while paused.
                    last = recording.first_frame + 1
                    self.state.globals[G_HOLD_AT] = last
                self.state.globals[G_LAST_RECORDING] = last
                recording.last_frame = last
                self._release()
        finished = recording.done if assembled else recording.writers_done
        if not finished.wait(timeout_s):
            raise GroupError(f"recording {recording.folder} did not finalize within {timeout_s} s")
        return recording

    def _finish_recording(self, recording: Recording) -> None:
        """All writers reported: free the group for the next recording, assemble off-thread."""
        state = self.state
        state.globals[G_FIRST_RECORDING] = -1
        state.globals[G_LAST_RECORDING] = -1
        dropped = self._dropped()
        self.recording = None
        self.last_recording = recording
        for sensor in self._sensors:
            sensor.request_stop()
        recording.writers_done.set()
        self._emit("recording_stopped", folder=str(recording.folder))
        assembler = threading.Thread(
            target=self._assemble, args=(recording, dropped, list(self._sensors)),
            name="assemble", daemon=False,
        )
        self._assemblers.append(assembler)
        assembler.start()

    def _assemble(
        self, recording: Recording, dropped: dict[str, int], sensors: list[SensorLink]
    ) -> None:
        folder = str(recording.folder)
        last_reported = [-1.0]

        def progress(fraction: float) -> None:
            if fraction - last_reported[0] >= 0.1 or fraction >= 1.0:
                last_reported[0] = fraction
                self._emit("assembly_progress", folder=folder, fraction=round(fraction, 3))

        outcomes = {s.spec.name: {**s.outcome(), "source": s.spec.source} for s in sensors}
        recording.assemble(dropped, progress, outcomes)
        self._emit(
            "recording_finalized", folder=folder, status=recording.status,
            frames=recording.frame_counts(), errors=list(recording.errors),
        )

    def pause(self) -> None:
        """Hold every camera at one frame boundary; a recording resumes intact."""
        with self._control:
            if not self._paused:
                self._gather()
                self._paused = True
                self._emit("paused")

    def resume(self) -> None:
        with self._control:
            if self._paused:
                self._paused = False
                self._release()
                self._emit("resumed")

    @property
    def paused(self) -> bool:
        return self._paused

    def update_settings(self, camera_id: str | None, changes: dict[str, Any]) -> dict[str, dict]:
        """Apply changes to one camera (or all, camera_id None) while the group is held.

        Returns the settings actually in effect per camera. A rejected change raises
        SettingRejected with the reason; cameras changed before it keep their change.
        Size and fps cannot change during a recording (every file keeps one geometry).
        """
        targets = [c for c in self._cameras if camera_id is None or c.spec.camera_id == camera_id]
        if not targets:
            raise GroupError(f"unknown camera {camera_id!r}")
        with self._control:
            self._require_healthy(targets)
            if self.recording is not None and {"width", "height", "fps"} & set(changes):
                raise SettingRejected("size and fps cannot change during a recording")
            self._gather()
            try:
                applied = {}
                for camera in targets:
                    deadline = time.monotonic() + self.start_timeout_s
                    self._command(camera, ("apply", dict(changes)))
                    reply = self._await(camera.replies, ("applied",), deadline)
                    if reply[0] == "rejected":
                        raise SettingRejected(f"{camera.spec.camera_id}: {reply[1]}")
                    if reply[0] != "applied":
                        raise GroupError(f"{camera.spec.camera_id}: {reply[1]}")
                    camera.settings, camera.properties = reply[1], reply[2]
                    if reply[3].get("reshape"):
                        self._give_ring(camera, deadline)
                        self._emit("ring_recreated", camera=camera.spec.camera_id)
                    applied[camera.spec.camera_id] = camera.settings
                return applied
            finally:
                self._release()

    # --- one camera's life cycle, while the others run on --------------------------------

    def restart_camera(self, camera_id: str, reason: str = "restart") -> None:
        """(Re)start one camera's process; it joins the running group at a common frame.

        A camera still in the group leaves it first (a recording ends at the last frame
        set it completed). Raises GroupError with the reason if the new process cannot
        open its source; the camera then stays parked with that error.
        """
        camera = self._camera(camera_id)
        with camera.lifecycle:
            if self._closing.is_set():
                raise GroupError("the capture group is closing")
            self._retire(camera, reason)
            self._start_camera_process(camera)
            deadline = time.monotonic() + self.start_timeout_s
            reply = self._await(camera.replies, ("opened",), deadline)
            if reply[0] != "opened":
                self._retire(camera, str(reply[1]))
                raise GroupError(f"{camera_id}: {reply[1]}")
            self._admit(camera, reply, deadline)

    def stop_camera(self, camera_id: str) -> None:
        """End one camera's process and free its ring; the others run on. A recording
        ends first."""
        camera = self._camera(camera_id)
        with camera.lifecycle:
            self._retire(camera, "stopped")
            camera.stopped = True
            if camera.ring is not None:
                camera.ring.close()
                camera.ring = None
        self._emit("camera_stopped", camera=camera_id)
        self._emit("ring_recreated", camera=camera_id)

    def _retire(self, camera: _Camera, reason: str) -> None:
        """End the camera's process, if any, and park it (a member leaves the group)."""
        process = camera.process
        with self._failure_lock:
            camera.error = camera.error or reason  # the monitor ignores this process now
        if process is not None and process.is_alive():
            process.kill()
            process.join(_JOIN_TIMEOUT_S)
        if camera.member:
            self._leave(camera, f"{camera.spec.camera_id}: {reason}")
        else:
            self._park(camera)
        if camera.conn is not None:
            camera.conn.close()
        camera.process, camera.conn = None, None

    def _rejoin(self, camera: _Camera, reply: tuple[Any, ...]) -> None:
        """A reconnected camera takes its place again (unless a restart replaces it)."""
        if not camera.lifecycle.acquire(blocking=False):
            return
        try:
            self._admit(camera, reply, time.monotonic() + self.start_timeout_s)
        except GroupError as exc:
            self._emit("error", message=f"{camera.spec.camera_id} could not rejoin: {exc}")
        finally:
            camera.lifecycle.release()

    def _admit(self, camera: _Camera, reply: tuple[Any, ...], deadline: float) -> None:
        """Give an opened camera a ring and its place in the gate at the next common frame."""
        camera.settings, camera.properties = reply[1], reply[2]
        recording = self.recording  # one this camera left: its writers finish first
        if recording is not None and not recording.writers_done.wait(self.start_timeout_s):
            raise GroupError(f"recording {recording.folder} did not finish")
        with self._control:
            frame = self._gather()
            try:
                self.state.cameras[camera.index, C_COUNT] = frame
                self._give_ring(camera, deadline)
                camera.member, camera.lost, camera.count = True, False, frame
                self._spread_from = max(self._spread_from, frame)
            except BaseException:
                self._park(camera)
                raise
            finally:
                self._release()
        self._emit("camera_joined", camera=camera.spec.camera_id, frame=frame)
        self._emit("ring_recreated", camera=camera.spec.camera_id)

    # --- observation ---------------------------------------------------------------------

    def _recording_cameras(self) -> list[dict[str, Any]]:
        return [
            {
                "id": c.spec.camera_id,
                "source": mask_credentials(c.spec.source),
                "synthetic": parse_source(c.spec.source).kind == "synthetic",
                "index": c.index,
                "settings": dict(c.settings),
            }
            for c in self._members()
        ]

    def _common_fps(self) -> float:
        """The nominal rate every file of a recording shares: the group runs at its slowest."""
        return min(float(c.settings["fps"]) for c in self._members())

    def _dropped(self) -> dict[str, int]:
        return {
            c.spec.camera_id: int(self.state.cameras[c.index, C_DROPPED]) for c in self._members()
        }

    def rings(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(camera id, ring name, settings) of every camera that has a ring to show."""
        return [(c.spec.camera_id, c.ring.name, dict(c.settings))
                for c in self._cameras if c.ring is not None]

    def ring_name(self, camera_id: str) -> str:
        for camera in self._cameras:
            if camera.spec.camera_id == camera_id and camera.ring is not None:
                return camera.ring.name
        raise GroupError(f"unknown camera {camera_id!r}")

    def camera_ids(self) -> list[str]:
        return [c.spec.camera_id for c in self._cameras]

    def _camera(self, camera_id: str) -> _Camera:
        for camera in self._cameras:
            if camera.spec.camera_id == camera_id:
                return camera
        raise GroupError(f"camera {camera_id!r} is not running")

    def settings(self, camera_id: str) -> dict[str, Any]:
        return dict(self._camera(camera_id).settings)

    def properties(self, camera_id: str) -> list[dict[str, Any]]:
        camera = self._camera(camera_id)
        if not camera.member:
            raise GroupError(f"camera {camera_id!r} is not running ({_absence(camera)})")
        return list(camera.properties)

    def counts(self) -> list[int]:
        """Frames published per camera, read in one copy so the values belong together
        (a parked camera: the count it had when it left)."""
        counts = self.state.counts.copy()
        return [int(counts[c.index]) if c.member else c.count for c in self._cameras]

    def health(self) -> dict[str, Any]:
        """What a supervisor needs each tick: per camera process, gate and frame count."""
        if self._closing.is_set():
            raise GroupError("the capture group is closing")
        counts = self.counts()
        return {
            "held": self._paused or int(self.state.globals[G_HOLD_AT]) != NO_HOLD,
            "recording": self.recording is not None,
            "cameras": {
                c.spec.camera_id: {
                    "alive": c.process is not None and c.process.is_alive() and c.error is None,
                    "member": c.member, "lost": c.lost, "stopped": c.stopped,
                    "frames": counts[c.index], "error": c.error,
                    "fps": float(c.settings.get("fps") or c.spec.fps),
                    "settings": dict(c.settings),
                }
                for c in self._cameras
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """Per-camera status, frames, dropped and measured fps; recording state; live spread."""
        state = self.state
        now = time.monotonic()
        cameras = []
        counts = self.counts()
        for camera in self._cameras:
            count = counts[camera.index]
            mark_time, mark_count = self._rate_marks.get(camera.index, (now, count))
            elapsed = now - mark_time
            fps = (count - mark_count) / elapsed if elapsed > 0 else 0.0
            if elapsed >= 1.0 or camera.index not in self._rate_marks:
                self._rate_marks[camera.index] = (now, count)
            cameras.append(
                {
                    "id": camera.spec.camera_id,
                    "source": mask_credentials(camera.spec.source),
                    "status": _status(camera, self._paused),
                    "pid": camera.process.pid if camera.process is not None else None,
                    "frames": count,
                    "dropped": int(state.cameras[camera.index, C_DROPPED]),
                    "fps": round(fps, 2),
                    "writer_lag": self._writer_lag(camera, count),
                    "error": None if camera.stopped else camera.error,
                }
            )
        recording = self.recording
        return {
            "cameras": cameras,
            "paused": self._paused,
            "recording": None if recording is None else str(recording.folder),
            "spread": self.recent_spread(),
        }

    def new_spreads_ms(self) -> np.ndarray:
        """Grab spread (ms) of each frame set completed since the previous call."""
        state = self.state
        rows = self._member_rows()
        if not rows:
            return np.zeros(0)
        end = int(state.counts[rows].min())
        start = max(self._spread_from, end - GRAB_HISTORY // 2)
        self._spread_from = max(self._spread_from, end)
        if end <= start:
            return np.zeros(0)
        stamps = state.grab_ns[np.ix_(rows, np.arange(start, end) % GRAB_HISTORY)]
        return (stamps.max(axis=0) - stamps.min(axis=0)) / 1e6

    @staticmethod
    def _writer_lag(camera: _Camera, count: int) -> int:
        """Frames captured but not yet taken by the recording writer (0 when not recording).

        Bounded by the ring: at a full ring capture waits, so memory never grows."""
        cursor = camera.ring.cursor if camera.ring is not None else -1
        return max(0, count - cursor) if cursor >= 0 else 0

    def recent_spread(self) -> dict[str, float]:
        """Summary of the grab spread of the frame sets completed since the previous call."""
        return spread_summary(self.new_spreads_ms())

    def process_ids(self) -> dict[str, int]:
        """pid of every camera and writer process, e.g. for CPU accounting."""
        pids = {}
        for camera in self._cameras:
            if camera.process is not None:
                pids[camera.spec.camera_id] = camera.process.pid
            pids[f"{camera.spec.camera_id}-writer"] = camera.writer.pid
        return pids


def _absence(camera: _Camera) -> str:
    """Why a camera is not in the gate, in a few words."""
    if camera.stopped:
        return "stopped"
    if camera.lost:
        return "reconnecting"
    return camera.error or "starting"


def _status(camera: _Camera, paused: bool) -> str:
    if camera.member:
        return "paused" if paused else "running"
    if camera.stopped:
        return "stopped"
    if camera.lost:
        return "reconnecting"
    return "failed" if camera.error else "starting"


def spread_summary(spreads_ms: np.ndarray) -> dict[str, float]:
    if not len(spreads_ms):
        return {"frame_sets": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "frame_sets": len(spreads_ms),
        "p50_ms": round(float(np.percentile(spreads_ms, 50)), 3),
        "p99_ms": round(float(np.percentile(spreads_ms, 99)), 3),
        "max_ms": round(float(spreads_ms.max()), 3),
    }
