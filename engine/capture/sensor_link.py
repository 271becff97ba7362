"""The controller's handle on one sensor process (engine/workers/sensor.py has its protocol).

A small reader thread turns the process's messages into events and hands the
"finished" answer of a recording to whoever waits for it, so the capture
controller only says record / stop / close.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.ipc.messages import (
    Exit,
    RecordSensor,
    SensorFailed,
    SensorFinished,
    StopSensor,
)
from engine.specs import SensorSpec
from engine.wire import events
from engine.workers.sensor import sensor_main

STOP_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 5.0


class SensorLink:
    def __init__(
        self, spec: SensorSpec, context: Any, state_name: str, n_cameras: int,
        emit: Callable[[events.Event], None],
    ) -> None:
        self.spec = spec
        self._emit = emit
        self._finished: queue.Queue[SensorFinished] = queue.Queue()
        self._conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=sensor_main,
            args=(spec.name, spec.source, dict(spec.settings), state_name, n_cameras, child_conn),
            name=f"sensor-{spec.name}", daemon=True,
        )
        self.process.start()
        child_conn.close()
        self._reader = threading.Thread(target=self._read, name=f"sensor-{spec.name}",
                                         daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                message = self._conn.recv()
                if isinstance(message, SensorFinished):
                    self._finished.put(message)
                elif isinstance(message, SensorFailed):
                    self._emit(events.SensorError(sensor=self.spec.name, message=message.message))
        self._finished.put(SensorFinished(0, "sensor process ended", None))

    def _send(self, message: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(message)

    def record(self, folder: Path) -> None:
        self._send(RecordSensor(str(folder)))

    def request_stop(self) -> None:
        """End the recording now; `outcome` collects the answer (one per stop, in order)."""
        self._send(StopSensor())

    def outcome(self) -> dict[str, Any]:
        """The stopped recording's samples, error, path and the sensor's source (for the
        manifest)."""
        try:
            finished = self._finished.get(timeout=STOP_TIMEOUT_S)
        except queue.Empty:
            finished = SensorFinished(None, "the sensor process did not answer", None)
        return {"samples": finished.samples, "error": finished.error, "path": finished.path,
                "source": self.spec.source}

    def close(self) -> None:
        self._send(Exit())
        self.process.join(JOIN_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        with contextlib.suppress(OSError):
            self._conn.close()
        self._reader.join(1.0)
