"""The sensor process: read one sensor, stamp every sample, write it to a sidecar CSV.

One process per sensor (a slow or hung device never stalls a camera); it shares only
the capture group's control block, from which it reads the group's frame number.

Every sample is stamped right after it arrives with `time.monotonic_ns()` (the clock of
the cameras' timestamps files), `time.time_ns()` and `frame = int(state.counts.min())`:
the group's frame count, i.e. every camera had published the frames < frame. While a
recording is active each sample is one row of `<rec>/sensors/<name>.csv`, except while
its writing is paused (frame inside the control block's pause range): the cameras' files
skip those frame sets, so the sidecar skips their samples too. The sensor is no part of
the gate, so a sample taken while the group is gathered at a pause (or resume) boundary
falls on the side the cells said at that instant, stamped with the boundary's frame
number; the data track (engine/recording/sensor_track.py) places samples by the take's
segments either way.

    sample,monotonic_ns,utc,frame,<fields...>

`sample` counts from 0 per recording; values are written with repr(), so they read back
exactly. Rows are handed to the OS about every 0.5 s (a crash loses at most that) and the
file is fsynced on stop.

Messages on the Connection (engine/ipc/messages.py):

controller -> sensor process (polled between samples, so handled within ~0.1 s or one
sample period, whichever is longer):
- RecordSensor(folder): start writing `<folder>/sensors/<name>.csv` (folder created if needed).
- StopSensor(): close (fsync) the file; always answered by SensorFinished.
- Exit(): stop any recording the same way, then end the process.

sensor process -> controller:
- SensorOpened(fields, rate_hz): the sensor is open; after an outage, sent again with the
  first sample it delivers.
- SensorRecording(path): the sidecar file exists and samples are being written to it.
- SensorFinished(samples, error, path): after stop, or at exit while recording (path None:
  there was no recording). error is the first sensor or file failure during that recording
  (an outage under way at "record" included); the file keeps every sample written before it.
- SensorFailed(message): reported once per cause: the sensor would not open or stopped
  reading (it is re-opened every second and the recording continues in the same file once
  it delivers again), the file could not be written (given up; its rows so far are kept),
  or a malformed / unexpected message (which does not mark the recording as failed).

The process also ends when its parent dies or the group's stop flag (G_STOP) is set.
"""

from __future__ import annotations

import contextlib
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine import machine_clock
from engine.ipc.child import ParentWatch, send_to_controller
from engine.ipc.control import G_STOP, GroupState
from engine.ipc.messages import (
    Exit,
    RecordSensor,
    SensorFailed,
    SensorFinished,
    SensorOpened,
    SensorRecording,
    StopSensor,
)
from engine.sensors.base import SensorError, SensorSource
from engine.sensors.factory import create_sensor
from engine.sensors.sidecar import SidecarWriter, check_sensor_name, sidecar_path

_READ_TIMEOUT_S = 0.1
_REOPEN_S = 1.0


def sensor_main(
    name: str,
    uri: str,
    settings: dict[str, Any],
    state_name: str,
    n_cameras: int,
    conn: Connection,
) -> None:
    """Process entry point (spawned by the controller); see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle
    state = GroupState.attach(state_name, n_cameras)
    process: _SensorProcess | None = None
    try:
        check_sensor_name(name)
        process = _SensorProcess(name, create_sensor(uri, **settings), state, conn)
        process.run()
    except Exception as exc:  # report every failure; the file is closed below
        send_to_controller(conn, SensorFailed(f"sensor {name}: {exc}"))
    finally:
        if process is not None:
            process.close()
        state.close()


class _Recording:
    """One record .. stop span: its file (None once it failed) and what happened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: SidecarWriter | None = None
        self.samples = 0
        self.error: str | None = None


class _SensorProcess:
    def __init__(
        self, name: str, sensor: SensorSource, state: GroupState, conn: Connection
    ) -> None:
        self.name = name
        self.sensor = sensor
        self.state = state
        self.conn = conn
        self.parent = ParentWatch()
        self.is_open = False
        self.outage: str | None = None  # why the sensor failed, until it delivers again
        self.reopen_at = 0.0
        self.recording: _Recording | None = None
        self.exit_requested = False

    def run(self) -> None:
        group = self.state.globals
        while not group[G_STOP] and self.parent.alive():
            self._handle_messages()
            if self.exit_requested:
                return
            if self.is_open:
                self._sample()
            elif time.monotonic() >= self.reopen_at:
                self._open()
            else:
                self.conn.poll(_READ_TIMEOUT_S)  # idle until a message or the next attempt
            if self.recording is not None and self.recording.writer is not None:
                try:
                    self.recording.writer.flush_if_due()
                except OSError as exc:
                    self._file_failed(self.recording, exc)

    # --- the sensor ---------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.sensor.open()
        except SensorError as exc:
            self._down(str(exc))
            return
        self.is_open = True
        if self.outage is None:  # after an outage, the first sample says it is back
            self._announce()

    def _announce(self) -> None:
        fields = list(self.sensor.fields())
        send_to_controller(self.conn, SensorOpened(fields, self.sensor.rate_hz))

    def _down(self, message: str) -> None:
        """The sensor failed: close it, report once per outage, retry in _REOPEN_S."""
        self.sensor.close()
        self.is_open = False
        self.reopen_at = time.monotonic() + _REOPEN_S
        if self.outage is None:
            self.outage = message
            self._error(message)

    def _sample(self) -> None:
        try:
            values = self.sensor.read(_READ_TIMEOUT_S)
        except SensorError as exc:
            self._down(str(exc))
            return
        if values is None:
            return
        monotonic_ns, utc_ns = machine_clock.now_ns(), time.time_ns()
        frame = int(self.state.counts.min())
        if self.outage is not None:
            self.outage = None
            self._announce()
        recording = self.recording
        if recording is None or recording.writer is None or self.state.writing_paused_at(frame):
            return
        try:
            recording.writer.write(recording.samples, monotonic_ns, utc_ns, frame, values)
        except OSError as exc:
            self._file_failed(recording, exc)
            return
        recording.samples += 1

    # --- messages and the sidecar file ----------------------------------------------

    def _handle_messages(self) -> None:
        while not self.exit_requested and self.conn.poll():
            try:
                message = self.conn.recv()
            except EOFError:  # the controller closed its end: nobody to record for
                self.exit_requested = True
                return
            if isinstance(message, RecordSensor) and isinstance(message.folder, str):
                self._start(Path(message.folder))
            elif isinstance(message, StopSensor):
                self._stop()
            elif isinstance(message, Exit):
                self.exit_requested = True
            else:
                send_to_controller(
                    self.conn, SensorFailed(f"sensor {self.name}: unknown message {message!r}"))

    def _start(self, folder: Path) -> None:
        if self.recording is not None:
            send_to_controller(self.conn, SensorFailed(
                f"sensor {self.name}: already recording to {self.recording.path}"))
            return
        recording = self.recording = _Recording(sidecar_path(folder, self.name))
        recording.error = self.outage
        try:
            recording.writer = SidecarWriter(recording.path, self.sensor.fields())
        except OSError as exc:
            self._error(f"sensor {self.name}: cannot create {recording.path}: "
                        f"{exc.strerror or exc}")
            return
        send_to_controller(self.conn, SensorRecording(str(recording.path)))

    def _stop(self) -> None:
        recording, self.recording = self.recording, None
        if recording is None:
            send_to_controller(self.conn, SensorFinished(0, None, None))
            return
        if recording.writer is not None:
            try:
                recording.writer.close()
            except OSError as exc:
                self._file_failed(recording, exc)
        send_to_controller(self.conn, SensorFinished(
            recording.samples, recording.error, str(recording.path)))

    def _file_failed(self, recording: _Recording, exc: OSError) -> None:
        """Writing failed (disk full, unplugged): give the file up, keeping what it holds."""
        writer, recording.writer = recording.writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.close()
        self._error(f"sensor {self.name}: cannot write {recording.path}: "
                    f"{exc.strerror or exc}", recording)

    def _error(self, message: str, recording: _Recording | None = None) -> None:
        """Report a failure; the active recording remembers its first one."""
        recording = recording or self.recording
        if recording is not None and recording.error is None:
            recording.error = message
        send_to_controller(self.conn, SensorFailed(message))

    def close(self) -> None:
        """Finish an active recording (fsync, "finished") and release the sensor."""
        if self.recording is not None:
            self._stop()
        self.sensor.close()
