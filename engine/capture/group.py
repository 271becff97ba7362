"""The controller of one capture group: N cameras in lock-step, one writer each.

A facade over parts that each own their state: the Gate (control block, hold point),
one CameraHandle per camera (process, ring, explicit CameraState), CameraLifecycle
(spawning, start-up barrier, join / leave / restart / stop of one camera while the
others run on), the TakeController (recordings, writer handshake, assembly, disk
guard) and the Monitor (process messages and deaths, reported to the lifecycle).

Queries are pure reads; rates and spreads are computed by the caller over its own
window (engine/capture/stats.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.capture.camera_handle import CameraHandle, CameraState, Roster
from engine.capture.errors import GroupError
from engine.capture.gate import Gate
from engine.capture.lifecycle import JOIN_TIMEOUT_S, CameraLifecycle
from engine.capture.monitor import Monitor
from engine.capture.sensor_link import SensorLink
from engine.capture.takes import TakeController
from engine.ipc.control import G_COPY_CAMERA
from engine.ipc.messages import Exit
from engine.ipc.ring import sweep_stale_segments
from engine.recording.encoder import DEFAULT_PRESET, ENCODER_THREADS
from engine.recording.session import Recording
from engine.sensors.base import SensorError
from engine.sensors.factory import validate_sensor
from engine.sources import Kind, mask_credentials, parse_source, validate_size_fps
from engine.sources.base import SourceError
from engine.specs import CameraSpec, SensorSpec
from engine.system.disk_guard import DiskGuard
from engine.wire import events

__all__ = ["CaptureGroup", "GroupError", "validate_specs"]

EventHandler = Callable[[events.Event], None]


def copy_candidate(cameras: list[CameraSpec]) -> int:
    """The one camera of a group that may be recorded by copy: the first network camera
    not told `record = "encode"` (-1: none). Copy takes its packets in order and steers
    the set clock onto them; two such cameras would each need the clock."""
    for index, spec in enumerate(cameras):
        if (parse_source(spec.source).kind is Kind.NETWORK
                and spec.settings.get("record", "auto") != "encode"):
            return index
    return -1


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
        disk_guard: DiskGuard | None = None,
    ) -> None:
        """`stopped`: cameras that stay parked until start_camera. With
        `tolerate_failures`, cameras that cannot open are parked with their error
        (for a supervisor to restart) instead of failing the start. `disk_guard`: the
        low-disk thresholds of every take (default: refuse and stop below 1 GB free)."""
        validate_specs(cameras)
        for sensor in sensors or []:
            try:
                validate_sensor(sensor)
            except (SensorError, ValueError) as exc:
                raise GroupError(f"sensor {sensor.name!r}: {exc}") from exc
        self.specs = list(cameras)
        self.sensor_specs = list(sensors or [])
        self.ring_seconds = ring_seconds
        self.start_timeout_s = start_timeout_s
        self._initially_stopped = set(stopped or ())
        self._tolerate_failures = tolerate_failures
        self._disk_guard = disk_guard or DiskGuard()
        self._on_event = on_event
        self._ctx = mp.get_context("spawn")
        self._roster = Roster()
        self._sensors: list[SensorLink] = []
        self._gate: Gate | None = None
        self._takes: TakeController | None = None
        self._monitor: Monitor | None = None
        self._control = threading.RLock()
        self._closing = threading.Event()
        self._lifecycle: CameraLifecycle | None = None

    # --- life cycle ----------------------------------------------------------------

    def __enter__(self) -> CaptureGroup:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def gate(self) -> Gate:
        if self._gate is None:
            raise GroupError("the capture group is not running")
        return self._gate

    @property
    def takes(self) -> TakeController:
        if self._takes is None:
            raise GroupError("the capture group is not running")
        return self._takes

    @property
    def lifecycle(self) -> CameraLifecycle:
        if self._lifecycle is None:
            raise GroupError("the capture group is not running")
        return self._lifecycle

    def start(self) -> None:
        """Spawn every process and pass the start-up barrier; on failure clean up and raise."""
        try:
            self._spawn()
            self.lifecycle.barrier(self._tolerate_failures)
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        sweep_stale_segments()
        gate = self._gate = Gate(len(self.specs), self._roster.failed)
        gate.state.globals[G_COPY_CAMERA] = copy_candidate(self.specs)
        takes = self._takes = TakeController(
            gate, self._roster, lambda: list(self._sensors), self._emit, self._control,
            self._closing, self.start_timeout_s, self._disk_guard,
        )
        lifecycle = self._lifecycle = CameraLifecycle(
            self._ctx, gate, self._roster, takes, self._emit, self._control, self._closing,
            self.start_timeout_s, self.ring_seconds,
        )
        for index, spec in enumerate(self.specs):
            camera = CameraHandle(spec, index, lifecycle.spawn_writer(spec, index))
            self._roster.cameras.append(camera)
            if spec.camera_id in self._initially_stopped:
                lifecycle.park(camera, was_member=False)
            else:
                lifecycle.spawn_camera(camera)
        self._sensors = [
            SensorLink(spec, self._ctx, gate.name, len(self.specs), self._emit)
            for spec in self.sensor_specs
        ]
        self._monitor = Monitor(lambda: list(self._roster), lifecycle, self._closing)
        self._monitor.start()

    def close(self) -> None:
        """Finalize any recording, stop every process, free every segment. Safe to repeat."""
        if self.recording is not None and not self._closing.is_set():
            try:
                self.stop_recording()
            except GroupError as exc:
                self._emit(events.Error(message=str(exc)))
        self._closing.set()
        for camera in self._roster:  # a restart in progress gives up and kills its process
            with camera.lifecycle_lock:
                pass
        if self._gate is not None:
            self._gate.stop()
        for camera in self._roster:
            with contextlib.suppress(OSError):  # the writer is already gone
                camera.writer.conn.send(Exit())
        for sensor in self._sensors:
            sensor.close()
        self._sensors = []
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for camera in self._roster:
            for process in (camera.process, camera.writer.process):
                if process is None:
                    continue
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join(1.0)
        if self._monitor is not None:
            self._monitor.join(1.0)
            self._monitor = None
        for camera in self._roster:
            if camera.conn is not None:
                camera.conn.close()
            camera.writer.conn.close()
            if camera.ring is not None:
                camera.ring.close()
                camera.ring = None
        self._roster.cameras = []
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        if self._takes is not None:
            self._takes.join_assemblers()

    def _emit(self, event: events.Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
        if isinstance(event, events.CameraJoined) and self._takes is not None:
            self._takes.camera_joined()

    # --- pause (writing) and freeze (the cameras) -------------------------------------------

    def pause(self, frames: int | None = None) -> None:
        """Pause writing the take at a frame every camera shares; the cameras and the
        preview go on (TakeController.pause). GroupError when nothing is being recorded."""
        frame = self.takes.pause(frames)
        if frame is not None:
            self._emit(events.Paused(frame=frame))

    def resume(self, frames: int | None = None) -> None:
        """Write the take again from a frame every camera shares (TakeController.resume)."""
        frame = self.takes.resume(frames)
        if frame is not None:
            self._emit(events.Resumed(frame=frame))

    @property
    def paused(self) -> bool:
        """Writing of the take is paused (the cameras run on)."""
        return self._takes is not None and self._takes.writing_paused

    def freeze(self) -> None:
        """Freeze preview: hold every camera at one frame boundary until unfreeze, with or
        without a take (a take then simply gets no frames, and its clock stands still)."""
        with self._control:
            if self.gate.freeze(self._roster.rows(), self._roster.idle_frame()):
                self.takes.clock_follows()
                self._emit(events.Frozen())

    def unfreeze(self) -> None:
        with self._control:
            if self.gate.thaw():
                self.takes.clock_follows()
                self._emit(events.Unfrozen())

    @property
    def frozen(self) -> bool:
        """The cameras are held (Freeze preview)."""
        return self._gate is not None and self._gate.frozen

    # --- recordings (the take controller) -------------------------------------------------

    @property
    def recording(self) -> Recording | None:
        return self._takes.recording if self._takes is not None else None

    @property
    def last_recording(self) -> Recording | None:
        return self._takes.last_recording if self._takes is not None else None

    def start_recording(
        self, output_dir: Path, codec: str = "h264", name: str | None = None, *,
        multitrack: bool = False, auto_resume: bool = False,
        h264_preset: str = DEFAULT_PRESET, encoder_threads: int = ENCODER_THREADS,
        at_ns: int | None = None, frames: int | None = None, rig: dict[str, Any] | None = None,
    ) -> Recording:
        """See TakeController.start (LowDiskError below the disk guard's threshold)."""
        return self.takes.start(output_dir, codec, name, multitrack=multitrack,
                                auto_resume=auto_resume, h264_preset=h264_preset,
                                encoder_threads=encoder_threads, at_ns=at_ns, frames=frames,
                                rig=rig)

    def stop_recording(self, timeout_s: float = 120.0, *, assembled: bool = True,
                       frames: int | None = None) -> Recording:
        """See TakeController.stop."""
        return self.takes.stop(timeout_s, assembled=assembled, frames=frames)

    # --- settings and one camera's life cycle (CameraLifecycle) ------------------------------

    def update_settings(self, camera_id: str | None, changes: dict[str, Any]) -> dict[str, dict]:
        """Apply changes to one camera (or all, camera_id None) while the group is held.

        Returns the settings actually in effect per camera. A rejected change raises
        SettingRejected with the reason; cameras changed before it keep their change.
        Size and fps cannot change during a recording (every file keeps one geometry).
        """
        return self.lifecycle.apply_settings(camera_id, changes)

    def restart_camera(self, camera_id: str, reason: str = "restart") -> None:
        """(Re)start one camera's process; it joins the running group at a common frame.

        Raises GroupError with the reason if the new process cannot open its source; the
        camera then stays parked with that error.
        """
        self.lifecycle.restart_camera(camera_id, reason)

    def stop_camera(self, camera_id: str) -> None:
        """End one camera's process and free its ring; the others run on. A recording
        ends first. Displays learn from CameraStopped that its ring is gone."""
        self.lifecycle.stop_camera(camera_id)

    # --- observation: pure reads ------------------------------------------------------------

    def rings(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(camera id, ring name, settings) of every camera that has a ring to show."""
        return [(c.camera_id, c.ring.name, dict(c.settings))
                for c in self._roster if c.ring is not None]

    def ring_name(self, camera_id: str) -> str:
        camera = self._roster.find(camera_id)
        if camera is None or camera.ring is None:
            raise GroupError(f"unknown camera {camera_id!r}")
        return camera.ring.name

    def camera_ids(self) -> list[str]:
        return [c.camera_id for c in self._roster]

    def _camera(self, camera_id: str) -> CameraHandle:
        camera = self._roster.find(camera_id)
        if camera is None:
            raise GroupError(f"camera {camera_id!r} is not running")
        return camera

    def settings(self, camera_id: str) -> dict[str, Any]:
        return dict(self._camera(camera_id).settings)

    def properties(self, camera_id: str) -> list[dict[str, Any]]:
        camera = self._camera(camera_id)
        if not camera.member:
            raise GroupError(f"camera {camera_id!r} is not running ({camera.absence()})")
        return list(camera.properties)

    def counts(self) -> list[int]:
        """Frames published per camera, read in one copy so the values belong together
        (a parked camera: the count it had when it left)."""
        counts = self.gate.counts()
        return [int(counts[c.index]) if c.member else c.count for c in self._roster]

    def health(self) -> dict[str, Any]:
        """What a supervisor needs each tick: per camera process, gate and frame count."""
        if self._closing.is_set():
            raise GroupError("the capture group is closing")
        counts = self.counts()
        return {
            "held": self.gate.held,
            "recording": self.recording is not None,
            "cameras": {
                c.camera_id: {
                    "alive": c.alive, "member": c.member,
                    "lost": c.state is CameraState.LOST,
                    "stopped": c.state is CameraState.STOPPED,
                    "frames": counts[c.index], "error": c.error,
                    "fps": float(c.settings.get("fps") or c.spec.fps),
                }
                for c in self._roster
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """Per-camera status, frames, dropped and writer lag, the recording, whether its
        writing is `paused` and whether the cameras are `frozen`, and the monotonic `time`
        of the reading (for rates: engine/capture/stats.py). Changes nothing, so any number
        of observers may ask at any time."""
        gate = self.gate
        counts = self.counts()
        frozen = gate.frozen
        recording = self.recording
        return {
            "time": time.monotonic(),
            "cameras": [
                {
                    "id": c.camera_id,
                    "source": mask_credentials(c.spec.source),
                    "status": c.status(frozen).value,
                    "pid": c.process.pid if c.process is not None else None,
                    "frames": counts[c.index],
                    "dropped": gate.dropped(c.index),
                    "writer_lag": _writer_lag(c, counts[c.index]),
                    "error": None if c.state is CameraState.STOPPED else c.error,
                }
                for c in self._roster
            ],
            "paused": self.paused,
            "frozen": frozen,
            "recording": None if recording is None else str(recording.folder),
        }

    def spreads_since(self, start: int) -> tuple[np.ndarray, int]:
        """Grab spreads (ms) of the frame sets completed from `start` on, and the frame they
        reach (the next call's start). Frame sets before the latest join are skipped."""
        rows = self._roster.rows()
        if not rows:
            return np.zeros(0), start
        end = self.gate.lowest(rows)
        return self.gate.spreads_ms(rows, max(start, self.lifecycle.joined_at), end), end

    def process_ids(self) -> dict[str, int]:
        """pid of every camera and writer process, e.g. for CPU accounting."""
        pids = {}
        for camera in self._roster:
            if camera.process is not None:
                pids[camera.camera_id] = camera.process.pid
            pids[f"{camera.camera_id}-writer"] = camera.writer.process.pid
        return pids


def _writer_lag(camera: CameraHandle, count: int) -> int:
    """Frames captured but not yet taken by the recording writer (0 when not recording).

    Bounded by the ring: at a full ring capture waits, so memory never grows."""
    cursor = camera.ring.cursor if camera.ring is not None else -1
    return max(0, count - cursor) if cursor >= 0 else 0
