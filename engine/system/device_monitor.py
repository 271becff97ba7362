"""The device status snapshot: one dict, about once a second, for the GUI and other programs.

`DeviceMonitor` gathers host metrics, the output folder's disk, network, battery and the
engine's own state, hands each snapshot to `publish` and rewrites a JSON status file
atomically (a reader sees the old file or the new one, never a mix). A sensor that cannot be
read gives its "unknown" values and a warning; nothing here raises into the engine.

Snapshot schema (keys are a contract with the GUI and the status-file readers):

    {
      "time": float,                  # time.time() when taken
      "device_id": str,               # hostname unless configured
      "software_version": str,        # engine.__version__
      "uptime_seconds": float,        # since the engine process started
      "engine_state": str,
      "cpu": {"usage_percent": float, "per_core_percent": [float, ...],
              "temperature_c": float | null},
      "memory": {"total_bytes": int, "used_bytes": int, "available_bytes": int,
                 "used_percent": float},
      "storage": {"path": str, "total_bytes": int, "used_bytes": int, "free_bytes": int,
                  "write_rate_bps": float, "seconds_to_full": float | null,
                  "level": "ok" | "warning" | "danger"},
      "network": {"status": "offline" | "network-only" | "online",
                  "interfaces": [{"name": str, "addresses": [str, ...]}],
                  "wifi": {"ssid": str, "signal_dbm": int | null} | null},
      "recording": {"active": bool, "id": str | null, "duration_s": float},
      "battery": null | {"percent": float, "voltage_v": float, "current_a": float,
                         "power_w": float, "is_charging": bool},
      "device_healthy": bool,         # false when device_error is set
      "device_error": str | null,     # what stops recording now (disk at "danger", unreadable)
      "warnings": [str, ...]          # what the operator should look at soon
    }

CPU usage covers the time since the previous snapshot; storage "write_rate_bps" is the
measured fall of free space over the last 30 s, and "seconds_to_full" is null unless free
space is falling.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

import engine
from engine.durable import write_json_atomic
from engine.system.battery import BatteryMonitor, BatteryReading
from engine.system.cpu import CpuMonitor
from engine.system.disk_guard import GB, DiskGuard
from engine.system.memory import memory_info
from engine.system.network import NetworkMonitor
from engine.system.storage import StorageMonitor

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]


class BatterySource(Protocol):
    def read(self) -> BatteryReading | None: ...
    def close(self) -> None: ...


class NetworkSource(Protocol):
    def snapshot(self) -> dict[str, Any]: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class HealthThresholds:
    """When a reading becomes a warning (the disk levels are the DiskGuard's)."""

    battery_low_percent: float = 15.0
    cpu_hot_c: float = 80.0
    memory_high_percent: float = 90.0
    disk_full_within_s: float = 900.0



# What a snapshot section holds when its reading failed.
_UNKNOWN_CPU: dict[str, Any] = {
    "usage_percent": 0.0, "per_core_percent": [], "temperature_c": None,
}
_UNKNOWN_MEMORY: dict[str, Any] = {
    "total_bytes": 0, "used_bytes": 0, "available_bytes": 0, "used_percent": 0.0,
}
_UNKNOWN_NETWORK: dict[str, Any] = {"status": "offline", "interfaces": [], "wifi": None}


class DeviceMonitor:
    """Builds a snapshot every interval_s on its own thread (`start()` / `close()`).

    output_dir() is the folder recordings go to now; engine_info() returns
    {"state": str, "recording": {"active": bool, "id": str | None, "duration_s": float}}.
    publish(snapshot) is called on the monitor's thread and should return quickly.
    The monitor owns the network and battery monitors it is given (or makes): `start()`
    starts the network monitor, `close()` stops it and releases the battery's I2C bus.
    """

    def __init__(
        self,
        output_dir: Callable[[], Path],
        engine_info: Callable[[], dict[str, Any]],
        *,
        publish: Callable[[Snapshot], None] | None = None,
        status_file: Path | None = None,
        device_id: str | None = None,
        interval_s: float = 1.0,
        disk_guard: DiskGuard | None = None,
        thresholds: HealthThresholds | None = None,
        battery: BatterySource | None = None,
        network: NetworkSource | None = None,
        cpu: CpuMonitor | None = None,
        storage: StorageMonitor | None = None,
        memory: Callable[[], dict[str, Any]] = memory_info,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._output_dir = output_dir
        self._engine_info = engine_info
        self._publish = publish
        self.status_file = Path(status_file) if status_file is not None else None
        self.device_id = device_id or socket.gethostname()
        self.interval_s = interval_s
        self.disk_guard = disk_guard or DiskGuard()
        self.thresholds = thresholds or HealthThresholds()
        self._battery = battery if battery is not None else BatteryMonitor()
        self._network = network if network is not None else NetworkMonitor()
        self._cpu = cpu or CpuMonitor()
        self._storage = storage or StorageMonitor()
        self._memory = memory
        self._clock = clock
        self._process_started = psutil.Process().create_time()
        self._build_lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._complaints: dict[str, str] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the network monitor and the once-per-interval snapshot thread."""
        if self._thread is not None:
            return
        self._network.start()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="device-status", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and the monitors this one owns; the status file stays."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._network.stop()
        self._battery.close()

    def snapshot(self) -> Snapshot:
        """Take a snapshot now (also what `latest()` returns from then on)."""
        with self._build_lock:
            snapshot = self._build()
            self._latest = snapshot
        return snapshot

    def latest(self) -> Snapshot:
        """The last snapshot taken, without reading any sensor (one is taken if none was)."""
        latest = self._latest
        return latest if latest is not None else self.snapshot()

    def _run(self) -> None:
        next_at = time.monotonic()
        while True:
            try:
                self._emit(self.snapshot())
            except Exception:  # a bug here must not end the status for the engine's lifetime
                log.exception("device status snapshot failed")
            next_at += self.interval_s
            now = time.monotonic()
            if next_at < now:  # fell behind (suspend, slow disk): no burst of catch-up rounds
                next_at = now + self.interval_s
            if self._stopping.wait(next_at - now):
                return

    def _emit(self, snapshot: Snapshot) -> None:
        if self._publish is not None:
            try:
                self._publish(snapshot)
            except Exception as exc:
                self._complain("publish", f"publishing the device status failed: {exc!r}")
            else:
                self._complaints.pop("publish", None)
        if self.status_file is not None:
            try:
                write_json_atomic(self.status_file, snapshot)
            except OSError as exc:
                self._complain("status file", f"cannot write {self.status_file}: {exc}")
            else:
                self._complaints.pop("status file", None)

    def _complain(self, key: str, message: str) -> None:
        """Log a problem when it starts or changes, not every second."""
        if self._complaints.get(key) != message:
            log.warning("%s", message)
            self._complaints[key] = message

    def _read(self, key: str, read: Callable[[], Any], fallback: Any,
              warnings: list[str]) -> Any:
        try:
            value = read()
        except Exception as exc:
            self._complain(key, f"{key} unreadable: {exc!r}")
            warnings.append(f"{key} unreadable: {exc}")
            return copy.deepcopy(fallback)
        self._complaints.pop(key, None)
        return value

    def _build(self) -> Snapshot:
        warnings: list[str] = []
        errors: list[str] = []
        info = self._read("engine", self._engine_info, {}, warnings)
        recording = info.get("recording") or {}
        cpu = self._read("cpu", self._cpu.sample, _UNKNOWN_CPU, warnings)
        memory = self._read("memory", self._memory, _UNKNOWN_MEMORY, warnings)
        storage = self._storage_section(warnings, errors)
        network = self._read("network", self._network.snapshot, _UNKNOWN_NETWORK, warnings)
        battery = self._read("battery", self._battery.read, None, warnings)
        battery = battery.as_dict() if battery is not None else None
        self._judge(cpu, memory, battery, warnings)
        now = self._clock()
        return {
            "time": now,
            "device_id": self.device_id,
            "software_version": engine.__version__,
            "uptime_seconds": round(max(now - self._process_started, 0.0), 3),
            "engine_state": str(info.get("state", "unknown")),
            "cpu": cpu,
            "memory": memory,
            "storage": storage,
            "network": network,
            "recording": {"active": bool(recording.get("active", False)),
                          "id": recording.get("id"),
                          "duration_s": float(recording.get("duration_s") or 0.0)},
            "battery": battery,
            "device_healthy": not errors,
            "device_error": "; ".join(errors) if errors else None,
            "warnings": warnings,
        }

    def _storage_section(self, warnings: list[str], errors: list[str]) -> dict[str, Any]:
        path: Path | str = "?"
        try:
            path = self._output_dir()
            storage = self._storage.sample(path)
        except Exception as exc:
            self._complain("storage", f"cannot read the disk of {path}: {exc!r}")
            errors.append(f"cannot read the disk of the output folder {path}: {exc}")
            return {"path": str(path), "total_bytes": 0, "used_bytes": 0, "free_bytes": 0,
                    "write_rate_bps": 0.0, "seconds_to_full": None, "level": "danger"}
        self._complaints.pop("storage", None)
        free = storage["free_bytes"]
        storage["level"] = level = self.disk_guard.level_of(free)
        if level == "danger":
            errors.append(f"disk almost full: {free / GB:.2f} GB free in {path}; "
                          "recording is refused or stopped")
        elif level == "warning":
            warnings.append(f"low disk space: {free / GB:.1f} GB free in {path}")
        to_full = storage["seconds_to_full"]
        if to_full is not None and to_full < self.thresholds.disk_full_within_s:
            warnings.append(f"disk full in about {to_full / 60:.0f} min at the current "
                            "write rate")
        return storage

    def _judge(self, cpu: dict[str, Any], memory: dict[str, Any],
               battery: dict[str, Any] | None, warnings: list[str]) -> None:
        limits = self.thresholds
        temperature = cpu.get("temperature_c")
        if temperature is not None and temperature >= limits.cpu_hot_c:
            warnings.append(f"CPU hot: {temperature:.0f} °C")
        if memory["used_percent"] >= limits.memory_high_percent:
            warnings.append(f"memory {memory['used_percent']:.0f} % used")
        if (battery is not None and not battery["is_charging"]
                and battery["percent"] < limits.battery_low_percent):
            warnings.append(f"battery low: {battery['percent']:.0f} %")
