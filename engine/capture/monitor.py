"""The thread that reads every process's messages and notices process deaths.

It waits on every camera's and writer's pipe and process sentinel at once, turns
what arrives into calls on a MonitorHandler (the group), and puts plain replies
(Opened, Attached, Prepared, ...) on the handle's queue for whoever awaits them.
Messages of a process that a restart replaced are ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any, Protocol

from engine.capture.camera_handle import CameraHandle
from engine.ipc.messages import Failed, Reconnected, StreamLost, WriterFinished

_POLL_S = 0.1


class MonitorHandler(Protocol):
    def camera_failed(self, camera: CameraHandle, reason: str, process: Any) -> None: ...
    def camera_lost(self, camera: CameraHandle, reason: str) -> None: ...
    def camera_reconnected(self, camera: CameraHandle, message: Reconnected) -> None: ...
    def writer_finished(self, camera: CameraHandle, outcome: WriterFinished) -> None: ...
    def writer_died(self, camera: CameraHandle) -> None: ...


class Monitor:
    """Runs until `closing` is set; the cameras are read afresh on every pass."""

    def __init__(self, cameras: Callable[[], list[CameraHandle]], handler: MonitorHandler,
                 closing: threading.Event) -> None:
        self._cameras = cameras
        self._handler = handler
        self._closing = closing
        self._thread = threading.Thread(target=self._run, name="group-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._closing.is_set():
            # handle -> (camera, what it is, the process it belongs to)
            sources: dict[Any, tuple[CameraHandle, str, Any]] = {}
            for camera in self._cameras():
                process = camera.process
                if camera.listening and camera.conn is not None:
                    sources[camera.conn] = (camera, "camera", process)
                    sources[process.sentinel] = (camera, "camera_death", process)
                writer = camera.writer
                if writer.alive:
                    sources[writer.conn] = (camera, "writer", writer.process)
                    sources[writer.process.sentinel] = (camera, "writer_death", writer.process)
            try:
                ready = wait(list(sources), timeout=_POLL_S)
            except OSError:
                continue
            for handle in ready:
                camera, kind, process = sources[handle]
                if process is not camera.process and process is not camera.writer.process:
                    continue
                if kind == "camera_death":
                    self._handler.camera_failed(
                        camera, f"camera process exited (code {process.exitcode})", process)
                elif kind == "writer_death":
                    self._handler.writer_died(camera)
                elif kind == "camera":
                    self._camera_message(camera, process)
                else:
                    self._writer_message(camera)

    def _camera_message(self, camera: CameraHandle, process: Any) -> None:
        assert camera.conn is not None
        try:
            message = camera.conn.recv()
        except (EOFError, OSError):
            self._handler.camera_failed(camera, "camera process closed its pipe", process)
            return
        if isinstance(message, Failed):
            self._handler.camera_failed(camera, message.reason, process)
        elif isinstance(message, StreamLost):
            self._handler.camera_lost(camera, message.reason)
        elif isinstance(message, Reconnected):
            self._handler.camera_reconnected(camera, message)
        else:
            camera.replies.put(message)

    def _writer_message(self, camera: CameraHandle) -> None:
        try:
            message = camera.writer.conn.recv()
        except (EOFError, OSError):
            return  # its sentinel reports the death
        if isinstance(message, WriterFinished):
            self._handler.writer_finished(camera, message)
        else:
            camera.writer.replies.put(message)
