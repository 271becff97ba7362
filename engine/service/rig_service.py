"""The engine's state behind the control socket: the rig, its capture group, its events.

Structural changes (add / remove a camera, load a rig) rebuild the capture group;
starting and stopping one camera does not (the others run on). Both are refused
while recording. Recording commands go straight to the group, which does its own
locking, so a long stop (finalizing files) never blocks another client's status
request. The supervisor restarts failed cameras; RigMemory keeps the rig in the state
database, so an engine restart brings it back as it was.

Events are engine.wire.events objects; the server masks the camera passwords this
service names (`secrets`) in everything it sends. The module is a little over 400 lines
because it is one concept: the engine's command surface, one public method a command.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import __version__, machine_clock
from engine.capture.group import CaptureGroup, GroupError
from engine.capture.stats import LiveStats
from engine.export import FORMATS
from engine.export.take import EXPORTABLE_STATUSES
from engine.recording.errors import RecordingError
from engine.recording.finalize import recover
from engine.recording.manifest import list_recordings, read_manifest
from engine.recording.timestamps import read_timestamps
from engine.rig import Rig, RigError, load_rig, rig_summary, save_rig
from engine.service.device_watch import DeviceWatch
from engine.service.exports import ExportRefused, Exports
from engine.service.rig_memory import RigMemory
from engine.sources import mask_credentials, parse_source
from engine.sources.base import SourceError
from engine.specs import CameraSpec, with_trigger
from engine.state.store import StateStore
from engine.supervisor.supervisor import Supervisor
from engine.system.button import Press
from engine.system.disk_guard import LowDiskError
from engine.wire.events import (
    CameraFailed,
    CameraJoined,
    CameraLost,
    CameraStopped,
    Error,
    Event,
    RecordingFinalized,
    RecordingRecovered,
    RecordingStarted,
    RingRecreated,
    RingsChanged,
    Stats,
    WriterFailed,
)
from engine.wire.nodes import pack_ns
from engine.wire.paths import log_path
from engine.wire.status import CameraStatus

STATS_INTERVAL_S = 1.0

EventSink = Callable[[Event], None]


class CommandError(RuntimeError):
    """A command that cannot be carried out; the text is sent back to the client."""


class RigService:
    """Owns the rig and runs its cameras. Each command of engine.wire.commands but the
    server's own (subscribe, shutdown) is the public method of its name; start, close
    and secrets are for the server."""

    def __init__(self, rig: Rig, emit: EventSink, store: StateStore | None = None,
                 status_file: Path | None = None, rig_file: Path | None = None) -> None:
        """`store`: the state database (None: nothing persists). `status_file`: where the
        device status JSON is kept for other programs. `rig_file`: the file the rig was
        read from, where save_rig writes when given no path (None: the rig has none)."""
        self._rig = rig
        self._rig_file = rig_file
        self._emit = emit
        self._store = store
        self._memory = RigMemory(store)
        self._group: CaptureGroup | None = None
        self._stopped: set[str] = set()
        self._supervisor = Supervisor(lambda: self._group, store, rig.supervisor, self._emit)
        self._notices: list[str] = []  # problems found at start, before any client listened
        self._recovered: list[dict[str, Any]] = []  # takes recovered at start, likewise
        self._device = DeviceWatch(
            rig.device, self._writing_to, self._engine_info,
            emit, status_file,
            self._button_pressed, idle=self._idle,
        )
        self._exports = Exports(emit)
        self._structure = threading.RLock()
        self._snapshot: dict[str, Any] = {"cameras": [], "spread": None}
        self._live: LiveStats | None = None
        self._stop_ticker = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="stats", daemon=True)
        self.started = time.time()

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        with self._structure:
            self._rig, self._stopped, problems = self._memory.restore(self._rig)
            if self._store is not None and self._store.damage:  # at open, or while restoring
                problems.insert(0, self._store.damage)
            for problem in problems:
                self._notices.append(problem)
                self._emit(Error(message=problem))
            self._rebuild()
        self._ticker.start()
        self._supervisor.start()
        self._device.start()
        threading.Thread(target=self._recover, name="recover", daemon=True).start()

    def _remember(self, spec: CameraSpec) -> None:
        self._memory.remember(spec, spec.camera_id in self._stopped)

    def _recover(self) -> None:
        """Salvage what a crash left unfinished in the rig's output folder."""
        folder = self._rig.recording.output_dir
        if not folder.is_dir():
            return
        for result in recover(folder):
            if result.get("error"):
                self._emit(Error(message=f"could not recover {result['folder']}: "
                                         f"{result['error']}"))
            else:
                self._recovered.append(result)
                self._emit(RecordingRecovered(folder=str(result["folder"]), summary=result))

    def close(self) -> None:
        """Finalize any recording and stop every camera process. Running cameras are
        marked crashed first, so the next engine brings them back."""
        self._stop_ticker.set()
        self._exports.close()
        self._supervisor.close()
        self._device.close()
        if self._store is not None:
            self._store.mark_running_as_crashed()
        with self._structure:
            if self._group is not None:
                self._group.close()
                self._group = None
        if self._store is not None:
            self._store.close()

    def _rebuild(self) -> None:
        """Restart the capture group with every camera of the rig; the ones that cannot
        open are parked with their error and left to the supervisor."""
        old, self._group = self._group, None  # the supervisor leaves a closing group alone
        if old is not None:
            old.close()
        self._supervisor.forget()
        group = CaptureGroup(
            with_trigger(self._rig.cameras, self._rig.recording.trigger),
            sensors=self._rig.sensors, on_event=self._on_group_event,
            stopped=self._stopped, tolerate_failures=True, disk_guard=self._device.disk_guard,
            start_timeout_s=self._rig.recording.device_ready_timeout_s,
        )
        try:
            group.start()
        except GroupError as exc:
            raise CommandError(str(exc)) from exc
        self._group = group
        self._refresh()
        self._emit(RingsChanged(rings=self.rings()))

    def _refresh(self) -> None:
        """Statuses that show a command's effect at once, not at the next tick."""
        self._supervisor.tick()
        self._snapshot = self._sample()

    # --- events --------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """The rig's network camera URLs with a password -> the same URL masked."""
        masked = {c.source: mask_credentials(c.source) for c in self._rig.cameras}
        return {raw: text for raw, text in masked.items() if raw != text}

    def _on_group_event(self, event: Event) -> None:
        if isinstance(event, CameraFailed | CameraLost | CameraJoined | WriterFailed):
            self._supervisor.wake()
        if isinstance(event, RecordingStarted):
            self._keep_sync_tolerance(event.folder)
        if self._store is not None and isinstance(event, RecordingStarted | RecordingFinalized):
            # every take, resumed ones too; frames once finalized
            frames = event.frames if isinstance(event, RecordingFinalized) else None
            status = event.status if isinstance(event, RecordingFinalized) else "recording"
            self._store.set_recording(event.folder, status, frames)
        if isinstance(event, RingRecreated | CameraStopped):  # a ring is new or gone
            self._emit(RingsChanged(rings=self.rings()))
            if isinstance(event, RingRecreated):
                return
        self._emit(event)
        if isinstance(event, RecordingFinalized) and event.status in EXPORTABLE_STATUSES:
            self._export_after(Path(event.folder))

    def _export_after(self, take: Path) -> None:
        """The rig's `export_after`: every finished take exported to those formats."""
        for to in self._rig.recording.export_after:
            try:
                self._exports.start(take, to, None)
            except ExportRefused as exc:
                self._emit(Error(message=f"could not export {take.name} to {to}: {exc}"))

    def _keep_sync_tolerance(self, folder: str) -> None:
        """Every take (resumed ones too) keeps the rig's sync_tolerance_ms in its manifest;
        the group starts takes without it, so it is added as each one starts."""
        tolerance = self._rig.recording.sync_tolerance_ms
        recording = self._group.recording if self._group is not None else None
        if tolerance is not None and recording is not None and str(recording.folder) == folder:
            recording.set_sync_tolerance(tolerance)

    def _tick(self) -> None:
        """About once a second: fresh per-camera figures for status and the event stream."""
        while not self._stop_ticker.wait(STATS_INTERVAL_S):
            with self._structure:
                self._snapshot = self._sample()
            group = self._group
            recording = group.recording if group else None
            self._emit(Stats(**self._current(),
                             elapsed_s=round(self._elapsed(), 1) if recording else None,
                             recorded_frames=self._recorded_frames()))

    def _recorded_frames(self) -> int | None:
        """Frame sets the take in progress has recorded (every camera published them),
        the frames of its writing pauses left out (they are in no file)."""
        group = self._group
        recording = group.recording if group else None
        if group is None or recording is None or recording.first_frame < 0:
            return None
        return recording.recorded_frames(min(group.counts(), default=0))

    def _writing_to(self) -> Path:
        """The folder whose disk matters now: the take's while recording, else the rig's."""
        group = self._group
        recording = group.recording if group else None
        return recording.folder if recording is not None else self._rig.recording.output_dir

    def _stop_quietly(self) -> None:
        try:
            self.stop(wait=False)
        except (GroupError, CommandError) as exc:
            self._emit(Error(message=f"could not stop the recording: {exc}"))

    def _engine_info(self) -> dict[str, Any]:
        group = self._group
        recording = group.recording if group else None
        return {"state": self._state(), "recording": {
            "active": recording is not None,
            "id": recording.name if recording else None,
            "duration_s": round(self._elapsed(), 1) if recording else 0.0}}

    def _idle(self) -> bool:
        """Cameras run and no take is recorded: the button then waits for a double press."""
        group = self._group
        return group is not None and group.recording is None

    def _button_pressed(self, press: Press) -> None:
        """The hardware button: short toggles recording, double (idle) toggles the preview
        freeze (Freeze preview: the cameras held)."""
        try:
            if press is Press.SHORT:
                group = self._group
                if group is not None and group.recording is not None:
                    self._stop_quietly()
                else:
                    self.record()
            elif press is Press.DOUBLE:
                group = self._group
                self.unfreeze() if group is not None and group.frozen else self.freeze()
        except EXPECTED_ERRORS as exc:
            self._emit(Error(message=f"record button: {exc}"))

    def _sample(self) -> dict[str, Any]:
        """The group's figures over this tick's window (rates, spreads), for every camera
        of the rig; the statuses are added by _current."""
        group = self._group
        if group is not None and (self._live is None or self._live.group is not group):
            self._live = LiveStats(group)  # rates and spreads over this tick's window
        snapshot = self._live.sample() if group and self._live else {"cameras": [],
                                                                       "spread": None}
        live = {c["id"]: c for c in snapshot["cameras"]}
        cameras = []
        for spec in self._rig.cameras:
            entry = live.get(spec.camera_id) or {
                "id": spec.camera_id, "pid": None, "frames": 0, "dropped": 0, "fps": 0.0,
                "status": CameraStatus.STOPPED, "error": None,
            }
            cameras.append({
                **entry, "source": spec.source,
                "target_fps": spec.fps, "size": f"{spec.width}x{spec.height}",
            })
        return {"cameras": cameras, "spread": snapshot["spread"]}

    def _current(self) -> dict[str, Any]:
        """The last tick's figures with every camera's status as the supervisor has it
        now: a change (a stream lost, a crash) shows at once, not at the next tick.
        `paused`: writing of the take is paused (cameras running); `frozen`: the cameras
        are held (Freeze preview), which shows each running camera as paused."""
        group = self._group
        paused = bool(group and group.paused)
        frozen = bool(group and group.frozen)
        health = self._supervisor.statuses()
        cameras = []
        for entry in self._snapshot["cameras"]:
            supervised = health.get(entry["id"])
            if supervised is not None:  # the supervisor's view: status, since, restarts
                entry = {**entry, **supervised,
                         "error": supervised["error"] or entry.get("error")}
                if entry["status"] == CameraStatus.RUNNING and frozen:
                    entry["status"] = CameraStatus.PAUSED
            cameras.append(entry)
        return {"cameras": cameras, "spread": self._snapshot["spread"], "paused": paused,
                "frozen": frozen}

    # --- commands: observation --------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return {"version": __version__, "pid": os.getpid()}

    def status(self) -> dict[str, Any]:
        """engine.state (see _state), the rig, the device, every camera, `paused` and
        `frozen` (see _current), the take under way (recording.paused: its writing is
        paused; recording.frozen: the cameras are held) and the last take."""
        group = self._group
        recording = group.recording if group else None
        last = group.last_recording if group else None
        return {
            "engine": {"version": __version__, "uptime_s": round(time.time() - self.started, 1),
                       "state": self._state(), "notices": list(self._notices),
                       "recovered": list(self._recovered), "export_formats": list(FORMATS),
                       "log": str(log_path())},
            "rig": rig_summary(self._rig),
            "device": self._device.latest(),
            **self._current(),
            "recording": None if recording is None else {
                "folder": str(recording.folder),
                "elapsed_s": round(self._elapsed(), 1),
                "paused": group.paused if group else False,
                "frozen": group.frozen if group else False,
                "first_frame": recording.first_frame,
                "segments": [list(segment) for segment in recording.segments],
                "recorded_frames": self._recorded_frames(),
                "rig_take": recording.rig,
            },
            "last_recording": None if last is None else {
                "folder": str(last.folder), "status": last.status,
                "frames": last.frame_counts(), "errors": list(last.errors),
            },
        }

    def _state(self) -> str:
        """The engine's state, the first that applies: "idle" (no capture group),
        "frozen" (the cameras are held by freeze, with or without a take), "paused" (a
        take whose writing is paused; the cameras run), "recording", "running" (cameras
        run, no take)."""
        group = self._group
        if group is None:
            return "idle"
        if group.frozen:
            return "frozen"
        if group.recording is not None:
            return "paused" if group.paused else "recording"
        return "running"

    def _elapsed(self) -> float:
        """The running take's own clock (pauses excluded)."""
        group = self._group
        recording = group.recording if group else None
        return recording.elapsed_s if recording is not None else 0.0

    def rings(self) -> list[dict[str, Any]]:
        """What a display needs to attach to every running camera's ring."""
        group = self._group
        if group is None:
            return []
        return [
            {"camera": camera_id, "ring": ring_name, "width": int(settings["width"]),
             "height": int(settings["height"]), "fps": float(settings["fps"])}
            for camera_id, ring_name, settings in group.rings()
        ]

    def discover(self) -> list[dict[str, Any]]:
        """Sources that can be added: the synthetic pattern and every camera found."""
        from engine.sources.discovery import list_cameras

        return list_cameras()

    def recordings(self, output: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest recordings of a folder, from their manifests (the GUI's recent list)."""
        folder = Path(output).expanduser() if output else self._rig.recording.output_dir
        return list_recordings(folder, limit)

    def properties(self, camera: str) -> list[dict[str, Any]]:
        return self._running_group().properties(self._known(camera))

    # --- commands: exports ----------------------------------------------------------------

    def export(self, folder: str, to: str, output: str | None = None) -> dict[str, Any]:
        """Start exporting a finished recording to a format (status's `export_formats`);
        `export_progress` and `export_finished` events follow. Refused at once for an
        unknown format, a folder that is not a finished recording in one of this engine's
        recordings folders, or the same export already under way."""
        if to not in FORMATS:
            raise CommandError(f"unknown export format {to!r} (formats: {', '.join(FORMATS)})")
        take = self._finished_recording(folder)
        self._exports.start(take, to, Path(output).expanduser() if output else None)
        return {"folder": str(take), "to": to}

    def take_summary(self, folder: str) -> dict[str, Any]:
        """A finished take's manifest, as a rig's coordinator assembles it."""
        take = self._finished_recording(folder)
        manifest = read_manifest(take)
        return {"folder": str(take), **{key: manifest.get(key) for key in (
            "name", "status", "fps", "first_frame", "last_frame", "rig_take", "errors")},
            "cameras": [{key: camera.get(key) for key in ("id", "file", "frames", "dropped")}
                        for camera in manifest.get("cameras", [])]}

    def take_times(self, folder: str, camera: str) -> dict[str, Any]:
        """One camera's capture times in a finished take, packed for the broker."""
        take = self._finished_recording(folder)
        entries = {entry.get("id"): entry for entry in read_manifest(take).get("cameras", [])}
        if camera not in entries:
            raise CommandError(f"{take.name} has no camera {camera!r}")
        try:
            times = read_timestamps(take / entries[camera]["timestamps"])
        except (RecordingError, KeyError) as exc:
            raise CommandError(f"{take.name}: cannot read {camera}'s timestamps: {exc}") from None
        if "capture_ns" not in times:
            raise CommandError(f"{take.name}: {camera}'s timestamps hold no capture times")
        return {"camera": camera, "frames": len(times["capture_ns"]),
                "capture_ns": pack_ns(times["capture_ns"])}

    def _finished_recording(self, folder: str) -> Path:
        """The take a client names, refused unless it lies in a recordings folder of this
        engine (a socket command reads no other folder) and is finished."""
        take = Path(folder).expanduser().resolve()
        roots = self._recording_roots()
        if not any(take.parent == root for root in roots):
            raise CommandError(f"{folder} is not a recording in the recordings folder"
                               f" ({', '.join(str(root) for root in sorted(roots))})")
        try:
            status = read_manifest(take).get("status")
        except RecordingError as exc:
            raise CommandError(f"no recording at {folder}: {exc}") from None
        if status not in EXPORTABLE_STATUSES:
            raise CommandError(f"{take.name} is not finished: its status is {status!r}, not "
                               f"{' or '.join(EXPORTABLE_STATUSES)}")
        return take

    def _recording_roots(self) -> set[Path]:
        """The rig's output folder and every folder this engine has recorded takes into."""
        group = self._group
        takes = [Path(row["folder"]) for row in self._store.recordings()] if self._store else []
        if group is not None:
            takes += [take.folder for take in (group.recording, group.last_recording) if take]
        return {self._rig.recording.output_dir.expanduser().resolve(),
                *(take.parent.resolve() for take in takes)}

    # --- commands: recording ------------------------------------------------------------

    def _running_group(self) -> CaptureGroup:
        if self._group is None:
            raise CommandError("no camera is running")
        return self._group

    def record(
        self, output: str | None = None, codec: str | None = None, name: str | None = None,
        start_at_ns: int | None = None, frames: int | None = None,
        rig_take: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start a take; the group refuses it below the disk threshold. With the rig's
        auto_resume, a take a failure ends is followed by the next (RecordingResumed).
        A node of a multi-machine rig starts at start_at_ns (the machine's clock) and
        may be given the take's length (see the Record command)."""
        options = self._rig.recording
        recording = self._running_group().start_recording(
            Path(output).expanduser() if output else options.output_dir,
            codec or options.codec, name, multitrack=options.multitrack,
            auto_resume=options.auto_resume and start_at_ns is None,
            h264_preset=options.h264_preset, encoder_threads=options.encoder_threads,
            at_ns=None if start_at_ns is None else machine_clock.to_monotonic_ns(start_at_ns),
            frames=frames, rig=rig_take,
        )
        return {"folder": str(recording.folder), "first_frame": recording.first_frame,
                "last_frame": recording.last_frame, "start_at_ns": start_at_ns}

    def pause(self, frames: int | None = None) -> dict[str, Any]:
        """Pause writing the take; the cameras and the preview go on. Refused when nothing
        is being recorded (freeze holds the preview). With frames: from that frame set of
        the take on."""
        self._running_group().pause(frames)
        return {"state": self._state()}

    def resume(self, frames: int | None = None) -> dict[str, Any]:
        """Write the paused take again. Refused when nothing is being recorded. With
        frames: from that frame set of the take on."""
        self._running_group().resume(frames)
        return {"state": self._state()}

    def freeze(self) -> dict[str, Any]:
        """Freeze preview: hold every camera, with or without a take."""
        self._running_group().freeze()
        return {"state": self._state()}

    def unfreeze(self) -> dict[str, Any]:
        self._running_group().unfreeze()
        return {"state": self._state()}

    def stop(self, wait: bool = True, frames: int | None = None) -> dict[str, Any]:
        """Stop recording. With wait, answer once the final files are assembled; without,
        as soon as capture is free again (a `recording_finalized` event follows). With
        frames, the take ends after that many frame sets from its first."""
        recording = self._running_group().stop_recording(assembled=wait, frames=frames)
        return {"folder": str(recording.folder), "status": recording.status,
                "frames": recording.frame_counts(), "errors": list(recording.errors)}

    # --- commands: cameras and rig --------------------------------------------------------

    def _known(self, camera: Any) -> str:
        if not isinstance(camera, str) or not any(c.camera_id == camera for c in self._rig.cameras):
            raise CommandError(f"unknown camera {camera!r}")
        return camera

    def _not_recording(self) -> None:
        group = self._group
        if group is not None and group.recording is not None:
            raise CommandError("stop the recording before changing the rig")

    def _restructure(self, rig: Rig, stopped: set[str]) -> None:
        with self._structure:
            self._not_recording()
            self._rig, self._stopped = rig, stopped & {c.camera_id for c in rig.cameras}
            self._memory.replace(rig, self._stopped)
            self._rebuild()

    def add_camera(
        self, source: str, id: str | None = None, width: int | None = None,
        height: int | None = None, fps: float | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        taken = {c.camera_id for c in self._rig.cameras}
        camera_id = id or next(f"cam{i}" for i in range(len(taken) + 1) if f"cam{i}" not in taken)
        parse_source(source)
        defaults = CameraSpec(camera_id)
        spec = replace(
            defaults, source=source, width=width or defaults.width,
            height=height or defaults.height, fps=fps or defaults.fps, settings=settings or {},
        )
        self._restructure(self._rig.with_camera(spec), self._stopped)
        return {"id": camera_id}

    def remove_camera(self, camera: str) -> dict[str, Any]:
        self._restructure(self._rig.without_camera(self._known(camera)), self._stopped)
        return {"id": camera}

    def start_camera(self, camera: str) -> dict[str, Any]:
        """Start one camera; the others keep running. Answers once it runs (or failed
        to open: the supervisor then keeps trying)."""
        camera = self._known(camera)
        with self._structure:
            self._not_recording()
            self._stopped.discard(camera)
            self._remember(self._rig.camera(camera))
        try:
            self._running_group().restart_camera(camera, "started by the user")
        except GroupError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self._refresh()
        return {"id": camera}

    def stop_camera(self, camera: str) -> dict[str, Any]:
        """Stop one camera and keep it stopped, across engine restarts too."""
        camera = self._known(camera)
        with self._structure:
            self._not_recording()
            self._stopped.add(camera)
            self._remember(self._rig.camera(camera))
            self._running_group().stop_camera(camera)
            self._refresh()
        return {"id": camera}

    def set(self, camera: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply settings; answers with the settings actually in effect."""
        camera = self._known(camera)
        if not isinstance(changes, dict) or not changes:
            raise CommandError("'changes' must be a non-empty object of settings")
        applied = self._running_group().update_settings(camera, changes)[camera]
        try:  # keep the rig (what save_rig writes) in step with what the camera runs
            self._rig = self._rig.with_settings(
                camera, {key: applied.get(key, value) for key, value in changes.items()}
            )
            self._remember(self._rig.camera(camera))
        except RigError as exc:
            self._emit(Error(message=f"{camera}: applied but not kept in the rig: {exc}"))
        return {"id": camera, "settings": applied}

    def load_rig(self, path: str) -> dict[str, Any]:
        rig = load_rig(Path(path).expanduser())
        self._restructure(rig, set())
        self._rig_file = Path(path).expanduser()
        return rig_summary(rig)

    def save_rig(self, path: str | None = None) -> dict[str, Any]:
        """Write the rig to `path`, by default the file it was loaded from (or last saved
        to), which later saves then use."""
        target = Path(path).expanduser() if path is not None else self._rig_file
        if target is None:
            raise CommandError("this rig was not loaded from a file: name the file to save to")
        save_rig(self._rig, target)
        self._rig_file = target
        return {"path": str(target)}


# Failures that are the request's or the rig's, answered as errors (anything else is a bug).
EXPECTED_ERRORS = (
    CommandError, GroupError, RigError, RecordingError, SourceError, ValueError, OSError, KeyError,
    LowDiskError, ExportRefused,
)
