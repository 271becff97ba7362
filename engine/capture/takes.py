"""The take controller: starts and stops recordings of the group and sees them finalized.

A take starts only when the disk has room, every camera that should run is in the
gate and every writer has opened its files; then the group is gathered and the first
frame chosen, so nothing is recorded by half the rig. It ends at a common frame
(stop), at the last complete frame set (a camera or writer failed), or before the disk
fills (the disk guard, checked about once a second while recording: the same policy
for the service, the CLI and any other caller). Once every writer has reported, the
group is free for the next take and the files are assembled on a thread of their own.

With auto_resume a recording is a Session of takes: a take that a failure ended is
followed by the next one as soon as every camera that should run is in the gate again;
a take the user (or the disk guard) stops ends the session.

Pause stops writing while the cameras run on (the preview stays live): the group is
gathered for an instant, and from that common frame on no camera flags its frames for
recording until resume, gathered again, names the frame writing goes on from. So every
file skips the same frame sets, the writers step over them (capture never waits), and
the take's segments (the manifest) and its timestamps' frame numbers show the gap. A
take always holds at least one frame set (a pause right at the start begins one frame
later), and the pause belongs to its take: a take that ends while paused ends there, and
the next (an auto_resume one too) starts writing. The take's clock stands still while
writing is paused and while the preview is frozen (the group held: no frames at all).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.capture.camera_handle import CameraHandle, Roster, await_reply
from engine.capture.errors import GroupError
from engine.capture.gate import Gate
from engine.capture.sensor_link import SensorLink
from engine.ipc.messages import Abort, Prepare, Prepared, RecordJob, StartWriting
from engine.recording.encoder import DEFAULT_PRESET, ENCODER_THREADS, X264, recorded_pix_fmt
from engine.recording.encoder_choice import EncoderChoice, choose_encoder
from engine.recording.errors import RecordingError
from engine.recording.session import Recording, Session
from engine.sources import mask_credentials, parse_source
from engine.system.disk_guard import DiskGuard, LowDiskError
from engine.wire import events

DISK_CHECK_S = 1.0


class TakeController:
    """Owns the running take (`recording`), the last one, and the assemblies under way."""

    def __init__(
        self, gate: Gate, roster: Roster, sensors: Callable[[], list[SensorLink]],
        emit: Callable[[events.Event], None], control: threading.RLock,
        closing: threading.Event, timeout_s: float, disk_guard: DiskGuard,
    ) -> None:
        """`control`: the group's lock for anything that gathers it."""
        self._gate = gate
        self._roster = roster
        self._sensors = sensors
        self._emit = emit
        self._control = control
        self._closing = closing
        self._timeout_s = timeout_s
        self.disk_guard = disk_guard
        self.recording: Recording | None = None
        self.last_recording: Recording | None = None
        self._assemblers: list[threading.Thread] = []
        self._session: Session | None = None  # auto_resume: the takes to go on with
        self._choice = choose_encoder("h264")  # how the last start's takes are encoded
        self._membership = threading.Event()  # a camera joined the gate (see camera_joined)

    def _gather(self) -> int:
        return self._gate.gather(self._roster.rows(), self._roster.idle_frame())

    # --- start and stop ----------------------------------------------------------------

    def start(
        self, output_dir: Path, codec: str = "h264", name: str | None = None, *,
        multitrack: bool = False, auto_resume: bool = False,
        h264_preset: str = DEFAULT_PRESET, encoder_threads: int = ENCODER_THREADS,
        at_ns: int | None = None, frames: int | None = None, rig: dict[str, Any] | None = None,
    ) -> Recording:
        """Start recording every camera at the same frame number; return the recording.

        A node of a rig of several machines starts at an agreed moment: at_ns (monotonic)
        makes the first frame set of the take the one due at that moment, and the sets
        after it a period apart (so the files of every node cover the same span); frames
        ends the take by itself after that many sets; rig (the rig's take) goes into the
        manifest.

        Raises LowDiskError below the disk guard's stop threshold, GroupError while a
        camera that should run is not in the gate, RecordingError if a file cannot be
        made. A new take may start while the previous one is still being assembled.
        With auto_resume the take is the first of a Session (see the module docstring).
        codec may be auto, nvenc or qsv: resolved here, by probing the machine's
        hardware encoders (once per process), outside the group's lock.
        """
        output_dir = Path(output_dir)
        choice = choose_encoder(codec, h264_preset, encoder_threads)
        with self._control:
            session = Session(output_dir, choice.codec, multitrack) if auto_resume else None
            recording = self._start_take(output_dir, choice, name, multitrack, session,
                                         at_ns=at_ns, frames=frames, rig=rig)
            self._session = session
            self._choice = choice
            return recording

    def _start_take(
        self, output_dir: Path, choice: EncoderChoice, name: str | None, multitrack: bool,
        session: Session | None, *, at_ns: int | None = None, frames: int | None = None,
        rig: dict[str, Any] | None = None,
    ) -> Recording:
        with self._control:
            if self.recording is not None:
                raise GroupError("a recording is already running")
            self.disk_guard.check_can_start(output_dir)
            self._roster.require_running()
            link = None
            if session is not None:
                name, link = session.next_take(name)
            members = self._roster.members()
            recording = Recording.create(
                output_dir, name, choice.codec, _manifest_cameras(members),
                min(float(c.settings["fps"]) for c in members),  # the group runs at its slowest
            )
            recording.multitrack = multitrack
            recording.session = link
            recording.rig = rig
            self._prepare_writers(recording, members, choice)
            try:
                first = self._gather() if at_ns is None else \
                    self._gate.gather_before(self._roster.rows(), at_ns, self._timeout_s)
            except GroupError:
                _abandon(recording, members)
                raise
            try:
                for camera in members:
                    assert camera.ring is not None
                    camera.ring.cursor = first
                self._gate.begin_take(first)
                if frames is not None:
                    self._end_after(recording, first, frames)
                recording.begin(first, self._dropped())
                self.recording = recording
                self.clock_follows()
                for camera in members:
                    camera.writer.conn.send(StartWriting(first))
                for sensor in self._sensors():
                    sensor.record(recording.folder)
            finally:
                if at_ns is None:
                    self._gate.release()
                else:
                    self._gate.release_at(at_ns)
            if session is not None:
                session.started(recording)
            self._emit(events.RecordingStarted(folder=str(recording.folder), first_frame=first))
            threading.Thread(target=self._guard_disk, args=(recording,), name="disk-guard",
                             daemon=True).start()
            return recording

    def _prepare_writers(self, recording: Recording, members: list[CameraHandle],
                         choice: EncoderChoice) -> None:
        """Have every writer open its files; on any failure abort all and remove the folder.
        Each camera's manifest entry then says how its writer encodes (before the manifest
        is first written)."""
        for camera in members:
            while not camera.writer.replies.empty():  # answers that came after a time-out
                camera.writer.replies.get_nowait()
            assert camera.ring is not None
            height, width, channels = camera.ring.shape
            camera.writer.conn.send(Prepare(RecordJob(
                camera.ring.name, recording.video_path(camera.camera_id),
                recording.timestamps_path(camera.camera_id), recording.codec,
                width, height, recording.fps, choice.encoder, choice.preset, choice.threads,
                camera.stream_template if camera.ring.packets else b"", channels,
            )))
        deadline = time.monotonic() + self._timeout_s
        replies = [await_reply(c.writer.replies, (Prepared,), deadline, self._closing,
                               self._timeout_s) for c in members]
        failures = [reply.reason for reply in replies if not isinstance(reply, Prepared)]
        if failures:
            _abandon(recording, members)
            raise RecordingError("cannot start recording: " + "; ".join(failures))
        entries = {entry["id"]: entry for entry in recording.cameras}
        for camera, reply in zip(members, replies, strict=True):
            if isinstance(reply, Prepared) and reply.encoder and camera.ring is not None:
                entries[camera.camera_id] |= _encoding(recording.codec, camera.ring.shape[2],
                                                       choice, reply)

    def stop(self, timeout_s: float = 120.0, *, assembled: bool = True,
             frames: int | None = None) -> Recording:
        """End the take at a common frame; wait until the writers are done, and with
        `assembled` (the default) until the final files are written too. A stopped take
        ends its session: nothing resumes after it. With frames, the take ends after
        exactly that many frame sets from its first (a rig's nodes end alike; GroupError
        when the group has passed that set already)."""
        with self._control:
            self._session = None
            recording = self.recording
            if recording is None:
                raise GroupError("no recording is running")
            if frames is not None and (recording.last_frame is None or recording.planned_end):
                self._end_after(recording, recording.first_frame, frames)
            elif recording.last_frame is None or recording.planned_end:
                last = self._gather()
                if recording.last_frame is not None:  # a planned end still ahead
                    last = min(last, recording.last_frame)
                if last <= recording.first_frame:
                    # Every recording holds at least one frame set; the hold point lets
                    # the group take exactly that one even while paused.
                    last = recording.first_frame + 1
                    self._gate.hold_at(last)
                self._gate.end_take_at(last)
                recording.last_frame = last
                self._gate.release()
                recording.planned_end = False
        finished = recording.done if assembled else recording.writers_done
        if not finished.wait(timeout_s):
            raise GroupError(f"recording {recording.folder} did not finalize within {timeout_s} s")
        return recording

    def _end_after(self, recording: Recording, first: int, frames: int) -> None:
        """End the take after `frames` sets from first (see _set_ahead)."""
        if frames < 1:
            raise GroupError(f"a take holds at least one frame set, not {frames}")
        last = self._set_ahead(recording, frames, first)
        self._gate.end_take_at(last)
        recording.last_frame = last
        recording.planned_end = True

    def _set_ahead(self, recording: Recording, frames: int, first: int | None = None) -> int:
        """The frame number of the take's set `frames` (counted from first, the take's
        first frame by default), which no camera may have reached yet: a boundary set
        without gathering the group must lie ahead of every camera and writer."""
        first = recording.first_frame if first is None else first
        rows = self._roster.rows()
        state = self._gate.state
        ahead = int((state.counts[rows] + state.grabbing[rows]).max()) if rows else first
        frame = first + frames
        if frame <= ahead:
            raise GroupError(f"the take has passed its frame set {frames} already "
                             f"({ahead - first} sets recorded)")
        return frame

    def _guard_disk(self, recording: Recording) -> None:
        """End the take cleanly (files finalized) before its disk fills up."""
        while not recording.writers_done.wait(DISK_CHECK_S):
            if recording.last_frame is not None:
                continue
            reason = self.disk_guard.should_stop(recording.folder)
            if reason is None:
                continue
            self._emit(events.Error(message=reason))
            try:
                self.stop(assembled=False)
            except GroupError as exc:
                self._emit(events.Error(message=f"could not stop the recording: {exc}"))
            return

    # --- a take that ends by itself ----------------------------------------------------------

    def camera_left(self, reason: str, rows: list[int]) -> None:
        """A camera left the gate: the take ends at the last frame set every camera in rows
        (the gate's and the one leaving) published."""
        recording = self.recording
        if recording is not None:
            recording.fail(reason, self._gate.cut(rows, recording.first_frame,
                                                  recording.last_frame))

    def writer_finished(self, camera: CameraHandle, error: str | None) -> None:
        """A writer is done. One that failed (encoder crash, disk full) ends the take for
        every camera; finalizing then cuts all files to the frames they all hold."""
        recording = self.recording
        if recording is None:
            return
        if error and recording.last_frame is None:
            recording.last_frame = self._gate.cut(self._roster.rows(), recording.first_frame,
                                                  recording.last_frame)
            self._emit(events.RecordingError(camera=camera.camera_id, message=error))
        if recording.add_outcome(camera.camera_id, error):
            self._finish(recording)

    def writer_died(self, camera: CameraHandle, reason: str) -> None:
        """A writer process died: its part of the take ends with that reason."""
        recording = self.recording
        if recording is not None and not recording.has_outcome(camera.camera_id):
            self.writer_finished(camera, reason)

    def _finish(self, recording: Recording) -> None:
        """All writers reported: free the group for the next take, assemble off-thread."""
        self._gate.clear_take()
        dropped = self._dropped()
        recording.stop_clock()
        self.recording = None
        self.last_recording = recording
        sensors = self._sensors()
        for sensor in sensors:
            sensor.request_stop()
        session = self._session
        if session is not None and session.folder == str(recording.folder):
            if recording.errors and not self._closing.is_set():
                session.waiting = True  # before writers_done: a camera may rejoin right after
                threading.Thread(target=self._resume_when_ready, args=(session,),
                                 name="auto-resume", daemon=True).start()
            else:
                self._session = None
        recording.writers_done.set()
        self._emit(events.RecordingStopped(folder=str(recording.folder)))
        assembler = threading.Thread(target=self._assemble, args=(recording, dropped, sensors),
                                     name="assemble", daemon=False)
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
                self._emit(events.AssemblyProgress(folder=folder, fraction=round(fraction, 3)))

        outcomes = {s.spec.name: s.outcome() for s in sensors}
        recording.finalize(dropped, progress, outcomes)
        self._emit(events.RecordingFinalized(
            folder=folder, status=recording.status, frames=recording.frame_counts(),
            errors=list(recording.errors),
        ))

    # --- auto_resume ---------------------------------------------------------------------------

    def camera_joined(self) -> None:
        """A camera is in the gate again: a waiting session may go on."""
        self._membership.set()

    def _resume_when_ready(self, session: Session) -> None:
        """Start the session's next take once every camera that should run is in the gate;
        give up when the session ends (a stop, the group closing) or a take cannot start."""
        while self._session is session and session.waiting and not self._closing.is_set():
            self._membership.clear()
            try:
                recording = self._start_take(session.output, self._choice, None,
                                             session.multitrack, session)
            except GroupError:  # a camera is not back yet (or a take runs): wait for one
                self._membership.wait(1.0)
                continue
            except (RecordingError, LowDiskError, OSError, ValueError) as exc:
                self._session = None
                self._emit(events.Error(message=f"could not resume the recording: {exc}"))
                return
            self._emit(events.RecordingResumed(folder=str(recording.folder), take=session.take))
            return

    def join_assemblers(self) -> None:
        """Wait for every assembly under way (final files are written even when closing)."""
        for assembler in self._assemblers:
            assembler.join()
        self._assemblers = []

    # --- the writing pause -------------------------------------------------------------------

    def _writing(self) -> Recording:
        """The take that is being written, or GroupError saying there is none."""
        recording = self.recording
        if recording is None or recording.last_frame is not None:
            raise GroupError("nothing is being recorded: pause and resume stop and restart "
                             "writing a take (freeze holds the preview)")
        return recording

    def pause(self, frames: int | None = None) -> int | None:
        """Stop writing at a frame every camera shares; the cameras run on. Returns that
        frame, None if writing was already paused. GroupError when no take is written.
        With frames, writing stops at the take's frame set `frames` (a rig's nodes pause
        alike; refused once the group has passed it), without gathering the group."""
        with self._control:
            recording = self._writing()
            if recording.writing_paused:
                return None
            gathered = frames is None
            boundary = self._gather() if frames is None else \
                self._set_ahead(recording, max(1, frames))
            try:
                # Never an empty take: its first frame set is recorded in any case.
                boundary = max(boundary, recording.first_frame + 1)
                recording.pause_at(boundary)  # the manifest first: no frame passes it yet
                self._gate.pause_writing(boundary)
                self.clock_follows()
            finally:
                if gathered:
                    self._gate.release()
            return boundary

    def resume(self, frames: int | None = None) -> int | None:
        """Write again from a frame every camera shares. Returns that frame, None if
        writing was not paused. GroupError when no take is written. With frames, writing
        goes on from the take's frame set `frames` (see pause)."""
        with self._control:
            recording = self._writing()
            if not recording.writing_paused:
                return None
            gathered = frames is None
            boundary = self._gather() if frames is None else self._set_ahead(recording, frames)
            try:
                segments = recording.segments
                paused_from = segments[-1][1] if segments else None
                if paused_from is not None:  # the pause may begin ahead of the group
                    boundary = max(boundary, paused_from)
                recording.resume_at(boundary)
                self._gate.resume_writing(boundary)
                self.clock_follows()
            finally:
                if gathered:
                    self._gate.release()
            return boundary

    @property
    def writing_paused(self) -> bool:
        recording = self.recording
        return recording is not None and recording.writing_paused

    # --- the clock follows the take and the group -------------------------------------------------

    def clock_follows(self) -> None:
        """The take's clock runs only while frames are written: not while writing is
        paused, nor while the group is frozen."""
        recording = self.recording
        if recording is None:
            return
        if recording.writing_paused or self._gate.frozen:
            recording.pause_clock()
        else:
            recording.resume_clock()

    def _dropped(self) -> dict[str, int]:
        return {c.camera_id: self._gate.dropped(c.index) for c in self._roster.members()}


def _abandon(recording: Recording, members: list[CameraHandle]) -> None:
    """A take that never got its first frame: its writers close their files, and its
    folder (with its lock file) goes."""
    for camera in members:
        with contextlib.suppress(OSError):
            camera.writer.conn.send(Abort())
    recording.discard()


def _manifest_cameras(members: list[CameraHandle]) -> list[dict[str, Any]]:
    """What the manifest says about each recorded camera (passwords masked); how an
    encoded one is encoded comes once its writer has opened the file (_encoding)."""
    return [
        {
            "id": c.camera_id,
            "source": mask_credentials(c.spec.source),
            "synthetic": parse_source(c.spec.source).kind == "synthetic",
            "index": c.index,
            "settings": dict(c.settings),
            "capture_clock": c.capture_clock,
            # "copy": the camera's own packets, not re-encoded (the take's codec is not its)
            "recorded_as": "copy" if c.ring is not None and c.ring.packets else "encode",
        }
        for c in members
    ]


def _encoding(codec: str, channels: int, choice: EncoderChoice,
              opened: Prepared) -> dict[str, Any]:
    """How a camera's file is encoded, as its writer opened it: the pixel format (gray for
    a mono camera where the encoder can), FFmpeg's encoder, x264's preset, and why it is
    not the hardware encoder asked for (the controller's probe or the writer's open)."""
    entry: dict[str, Any] = {"pix_fmt": recorded_pix_fmt(codec, channels, opened.encoder),
                             "encoder": opened.encoder}
    if opened.encoder == X264:
        entry["preset"] = choice.preset
    fallback = opened.fallback or choice.fallback
    if fallback:
        entry["encoder_fallback"] = fallback
    return entry
