"""The engine's state behind the control socket: the rig, its capture group, its events.

Structural changes (add / remove / start / stop a camera, load a rig) rebuild the
capture group, so they are refused while recording. Recording commands go
straight to the group, which does its own locking, so a long stop (finalizing
files) never blocks another client's status request.

Every text that leaves the engine passes `scrub`, which masks the passwords of
network camera URLs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import __version__
from engine.capture.group import CaptureGroup, GroupError
from engine.capture.spec import CameraSpec
from engine.recording.assemble import recover
from engine.recording.errors import RecordingError
from engine.rig import Rig, RigError, load_rig, rig_summary, save_rig
from engine.sources import mask_credentials, parse_source
from engine.sources.base import SourceError

STATS_INTERVAL_S = 1.0

EventSink = Callable[[dict[str, Any]], None]


class CommandError(RuntimeError):
    """A command that cannot be carried out; the text is sent back to the client."""


class RigService:
    """Owns the rig and runs its cameras; every public method is one protocol command."""

    def __init__(self, rig: Rig, emit: EventSink) -> None:
        self._rig = rig
        self._emit_raw = emit
        self._group: CaptureGroup | None = None
        self._stopped: set[str] = set()
        self._failed: dict[str, str] = {}
        self._structure = threading.RLock()
        self._snapshot: dict[str, Any] = {"cameras": [], "spread": None}
        self._recording_started: float | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._stop_ticker = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="stats", daemon=True)
        self.started = time.time()

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        with self._structure:
            self._rebuild()
        self._ticker.start()
        threading.Thread(target=self._recover, name="recover", daemon=True).start()

    def _recover(self) -> None:
        """Salvage what a crash left unfinished in the rig's output folder."""
        folder = self._rig.recording.output_dir
        if not folder.is_dir():
            return
        for result in recover(folder):
            if result.get("error"):
                self._emit("error", message=f"could not recover {result['folder']}: "
                                            f"{result['error']}")
            else:
                self._emit("recording_recovered", **result)

    def close(self) -> None:
        """Finalize any recording and stop every camera process."""
        self._stop_ticker.set()
        with self._structure:
            if self._group is not None:
                self._group.close()
                self._group = None

    def _rebuild(self) -> None:
        """Restart the capture group with the cameras that should run; skip ones that fail."""
        if self._group is not None:
            self._group.close()
            self._group = None
        self._failed.clear()
        wanted = [c for c in self._rig.cameras if c.camera_id not in self._stopped]
        while wanted:
            group = CaptureGroup(
                wanted, sensors=self._rig.sensors, on_event=self._on_group_event
            )
            try:
                group.start()
            except GroupError as exc:
                if not exc.failed:
                    raise CommandError(str(exc)) from exc
                self._failed.update(exc.failed)
                for camera_id, reason in exc.failed.items():
                    self._emit("camera_failed", camera=camera_id, message=reason)
                wanted = [c for c in wanted if c.camera_id not in exc.failed]
                continue
            self._group = group
            break
        self._snapshot = self._sample()
        self._emit("rings_changed", rings=self.rings())

    # --- events --------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Mask every camera password that might appear in text."""
        for camera in self._rig.cameras:
            masked = mask_credentials(camera.source)
            if masked != camera.source:
                text = text.replace(camera.source, masked)
        return text

    def _emit(self, kind: str, **data: Any) -> None:
        event = json.loads(self.scrub(json.dumps({"event": kind, "time": time.time(), **data},
                                                 default=str)))
        self._emit_raw(event)

    def _on_group_event(self, event: dict[str, Any]) -> None:
        kind = event.pop("event")
        event.pop("time", None)
        if kind == "camera_failed":
            self._failed[event["camera"]] = event["message"]
        if kind == "recording_finalized":
            self._recording_started = None
        if kind == "ring_recreated":
            self._emit("rings_changed", rings=self.rings())
        self._emit(kind, **event)

    def _tick(self) -> None:
        """About once a second: fresh per-camera figures for status and the event stream."""
        while not self._stop_ticker.wait(STATS_INTERVAL_S):
            with self._structure:
                self._snapshot = self._sample()
            self._emit("stats", **self._snapshot)

    def _sample(self) -> dict[str, Any]:
        group = self._group
        snapshot = group.snapshot() if group else {"cameras": [], "spread": None}
        live = {c["id"]: c for c in snapshot["cameras"]}
        cameras = []
        for spec in self._rig.cameras:
            entry = live.get(spec.camera_id) or {
                "id": spec.camera_id, "pid": None, "frames": 0, "dropped": 0, "fps": 0.0,
                "error": self._failed.get(spec.camera_id),
            }
            if spec.camera_id in self._stopped:
                status = "stopped"
            elif spec.camera_id in self._failed:
                status = "failed"
                entry["error"] = self._failed[spec.camera_id]
            else:
                status = entry.get("status", "stopped")
            cameras.append({
                **entry, "source": mask_credentials(spec.source), "status": status,
                "target_fps": spec.fps, "size": f"{spec.width}x{spec.height}",
            })
        return {"cameras": cameras, "spread": snapshot["spread"]}

    # --- commands: observation --------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return {"version": __version__, "pid": os.getpid()}

    def status(self) -> dict[str, Any]:
        group = self._group
        recording = group.recording if group else None
        last = group.last_recording if group else None
        return json.loads(self.scrub(json.dumps({
            "engine": {"version": __version__, "uptime_s": round(time.time() - self.started, 1),
                       "state": self._state()},
            "rig": rig_summary(self._rig),
            **self._snapshot,
            "recording": None if recording is None else {
                "folder": str(recording.folder),
                "elapsed_s": round(self._elapsed(), 1),
                "paused": group.paused if group else False,
                "first_frame": recording.first_frame,
            },
            "last_recording": None if last is None else {
                "folder": str(last.folder), "status": last.status,
                "frames": last.frame_counts(), "errors": list(last.errors),
            },
        }, default=str)))

    def _state(self) -> str:
        group = self._group
        if group is None:
            return "idle"
        if group.recording is not None:
            return "paused" if group.paused else "recording"
        return "paused" if group.paused else "running"

    def _elapsed(self) -> float:
        if self._recording_started is None:
            return 0.0
        paused = self._paused_total
        if self._paused_since is not None:
            paused += time.monotonic() - self._paused_since
        return time.monotonic() - self._recording_started - paused

    def rings(self) -> list[dict[str, Any]]:
        """What a display needs to attach to every running camera's ring."""
        group = self._group
        if group is None:
            return []
        rings = []
        for camera_id in group.camera_ids():
            settings = group.settings(camera_id)
            rings.append({
                "camera": camera_id, "ring": group.ring_name(camera_id),
                "width": int(settings["width"]), "height": int(settings["height"]),
                "fps": float(settings["fps"]),
            })
        return rings

    def discover(self) -> list[dict[str, Any]]:
        """Sources that can be added: the synthetic pattern and every camera found."""
        from engine.sources.discovery import list_cameras

        return list_cameras()

    def properties(self, camera: str) -> list[dict[str, Any]]:
        return self._running_group().properties(self._known(camera))

    # --- commands: recording ------------------------------------------------------------

    def _running_group(self) -> CaptureGroup:
        if self._group is None:
            raise CommandError("no camera is running")
        return self._group

    def record(
        self, output: str | None = None, codec: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        options = self._rig.recording
        group = self._running_group()
        recording = group.start_recording(
            Path(output).expanduser() if output else options.output_dir,
            codec or options.codec, name,
            chunk_length_s=options.chunk_length_s, multitrack=options.multitrack,
        )
        self._recording_started, self._paused_since, self._paused_total = time.monotonic(), None, 0
        return {"folder": str(recording.folder), "first_frame": recording.first_frame}

    def pause(self) -> dict[str, Any]:
        self._running_group().pause()
        if self._paused_since is None:
            self._paused_since = time.monotonic()
        return {"state": self._state()}

    def resume(self) -> dict[str, Any]:
        self._running_group().resume()
        if self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        return {"state": self._state()}

    def stop(self, wait: bool = True) -> dict[str, Any]:
        """Stop recording. With wait, answer once the final files are assembled; without,
        as soon as capture is free again (a `recording_finalized` event follows)."""
        recording = self._running_group().stop_recording(assembled=wait)
        self._recording_started = None
        return {"folder": str(recording.folder), "status": recording.status,
                "frames": recording.frame_counts(), "errors": list(recording.errors)}

    # --- commands: cameras and rig --------------------------------------------------------

    def _known(self, camera: Any) -> str:
        if not isinstance(camera, str) or not any(c.camera_id == camera for c in self._rig.cameras):
            raise CommandError(f"unknown camera {camera!r}")
        return camera

    def _restructure(self, rig: Rig, stopped: set[str]) -> None:
        with self._structure:
            group = self._group
            if group is not None and group.recording is not None:
                raise CommandError("stop the recording before changing the rig")
            self._rig, self._stopped = rig, stopped & {c.camera_id for c in rig.cameras}
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
        self._restructure(self._rig, self._stopped - {self._known(camera)})
        return {"id": camera}

    def stop_camera(self, camera: str) -> dict[str, Any]:
        self._restructure(self._rig, self._stopped | {self._known(camera)})
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
        except RigError as exc:
            self._emit("error", message=f"{camera}: applied but not kept in the rig: {exc}")
        return {"id": camera, "settings": applied}

    def load_rig(self, path: str) -> dict[str, Any]:
        rig = load_rig(Path(path).expanduser())
        self._restructure(rig, set())
        return rig_summary(rig)

    def save_rig(self, path: str) -> dict[str, Any]:
        save_rig(self._rig, Path(path).expanduser())
        return {"path": str(Path(path).expanduser())}


COMMANDS = {
    "ping", "status", "rings", "properties", "discover", "record", "pause", "resume", "stop",
    "add_camera", "remove_camera", "start_camera", "stop_camera", "set", "load_rig", "save_rig",
}
# Failures that are the request's or the rig's, answered as errors (anything else is a bug).
EXPECTED_ERRORS = (
    CommandError, GroupError, RigError, RecordingError, SourceError, ValueError, OSError, KeyError,
)
