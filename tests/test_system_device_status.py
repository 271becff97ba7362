"""The device status snapshot, its publication and the atomically rewritten status file."""

from __future__ import annotations

import json
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

import engine
from engine.system.battery import BatteryReading
from engine.system.device_monitor import DeviceMonitor, HealthThresholds, write_json_atomic
from engine.system.disk_guard import DiskGuard
from engine.system.storage import StorageMonitor

GB = 10**9
Usage = namedtuple("Usage", "total used free")
NETWORK = {"status": "online", "interfaces": [{"name": "eth0", "addresses": ["192.0.2.7"]}],
           "wifi": {"ssid": "studio", "signal_dbm": -60}}


pytestmark = pytest.mark.usefixtures("no_thread_leaks")


class FakeNetwork:
    def __init__(self) -> None:
        self.running = False
        self.broken = False

    def snapshot(self) -> dict:
        if self.broken:
            raise RuntimeError("network monitor bug")
        return json.loads(json.dumps(NETWORK))

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


class FakeBattery:
    def __init__(self, reading: BatteryReading | None) -> None:
        self.reading = reading
        self.closed = False
        self.error: Exception | None = None

    def read(self) -> BatteryReading | None:
        if self.error is not None:
            raise self.error
        return self.reading

    def close(self) -> None:
        self.closed = True


def monitor(tmp_path: Path, free: int = 50 * GB, **kwargs) -> DeviceMonitor:
    engine_info = {"state": "recording",
                   "recording": {"active": True, "id": "2026-11-22_10-15-00", "duration_s": 12.5}}
    kwargs.setdefault("battery", FakeBattery(BatteryReading(64.0, 7.54, -0.6, 4.5, False)))
    kwargs.setdefault("network", FakeNetwork())
    kwargs.setdefault("storage", StorageMonitor(
        disk_usage=lambda path: Usage(100 * GB, 100 * GB - free, free)))
    return DeviceMonitor(lambda: tmp_path / "recordings", lambda: engine_info,
                         device_id=kwargs.pop("device_id", "rig-7"), **kwargs)


def assert_schema(snapshot: dict) -> None:
    assert set(snapshot) == {"time", "device_id", "software_version", "uptime_seconds",
                             "engine_state", "cpu", "memory", "storage", "network",
                             "recording", "battery", "device_healthy", "device_error",
                             "warnings"}
    assert set(snapshot["cpu"]) == {"usage_percent", "per_core_percent", "temperature_c"}
    assert set(snapshot["memory"]) == {"total_bytes", "used_bytes", "available_bytes",
                                       "used_percent"}
    assert set(snapshot["storage"]) == {"path", "total_bytes", "used_bytes", "free_bytes",
                                        "write_rate_bps", "seconds_to_full", "level"}
    assert set(snapshot["network"]) == {"status", "interfaces", "wifi"}
    assert set(snapshot["recording"]) == {"active", "id", "duration_s"}
    assert snapshot["battery"] is None or set(snapshot["battery"]) == {
        "percent", "voltage_v", "current_a", "power_w", "is_charging"}
    assert isinstance(snapshot["warnings"], list)
    json.dumps(snapshot)


def test_snapshot_schema_and_values(tmp_path: Path) -> None:
    status = monitor(tmp_path)
    snapshot = status.snapshot()
    assert_schema(snapshot)
    assert snapshot["device_id"] == "rig-7"
    assert snapshot["software_version"] == engine.__version__
    assert 0 < snapshot["uptime_seconds"] < 24 * 3600
    assert abs(snapshot["time"] - time.time()) < 5
    assert snapshot["engine_state"] == "recording"
    assert snapshot["recording"] == {"active": True, "id": "2026-11-22_10-15-00",
                                     "duration_s": 12.5}
    assert snapshot["storage"]["path"] == str(tmp_path / "recordings")
    assert snapshot["storage"]["free_bytes"] == 50 * GB
    assert snapshot["storage"]["level"] == "ok"
    assert snapshot["network"] == NETWORK
    assert snapshot["battery"] == {"percent": 64.0, "voltage_v": 7.54, "current_a": -0.6,
                                   "power_w": 4.5, "is_charging": False}
    assert snapshot["cpu"]["per_core_percent"]
    assert snapshot["memory"]["total_bytes"] > 0
    assert snapshot["device_healthy"] is True and snapshot["device_error"] is None
    assert status.latest() is snapshot


def test_device_id_defaults_to_the_hostname(tmp_path: Path) -> None:
    import socket

    status = DeviceMonitor(lambda: tmp_path, lambda: {"state": "idle"},
                           battery=FakeBattery(None), network=FakeNetwork())
    snapshot = status.snapshot()
    assert snapshot["device_id"] == socket.gethostname()
    assert snapshot["battery"] is None
    assert snapshot["recording"] == {"active": False, "id": None, "duration_s": 0.0}


def test_disk_levels_make_warnings_and_errors(tmp_path: Path) -> None:
    low = monitor(tmp_path, free=3 * GB).snapshot()
    assert low["storage"]["level"] == "warning" and low["device_healthy"]
    assert any("3.0 GB free" in warning for warning in low["warnings"])
    full = monitor(tmp_path, free=GB // 2).snapshot()
    assert full["storage"]["level"] == "danger" and not full["device_healthy"]
    assert "0.50 GB free" in full["device_error"]
    custom = monitor(tmp_path, free=30 * GB,
                     disk_guard=DiskGuard(warn_below_bytes=40 * GB, stop_below_bytes=20 * GB))
    assert custom.snapshot()["storage"]["level"] == "warning"


def test_battery_and_temperature_warnings(tmp_path: Path) -> None:
    battery = FakeBattery(BatteryReading(9.0, 6.2, -0.9, 5.6, False))
    snapshot = monitor(tmp_path, battery=battery,
                       thresholds=HealthThresholds(memory_high_percent=101.0)).snapshot()
    assert snapshot["warnings"] == ["battery low: 9 %"]
    battery.reading = BatteryReading(9.0, 6.2, 1.1, 6.8, True)
    assert monitor(tmp_path, battery=battery,
                   thresholds=HealthThresholds(memory_high_percent=101.0)).snapshot()[
        "warnings"] == []


def test_failing_sensors_never_raise(tmp_path: Path) -> None:
    battery = FakeBattery(None)
    battery.error = OSError(121, "Remote I/O error")
    network = FakeNetwork()
    network.broken = True

    def broken_memory() -> dict:
        raise OSError("/proc/meminfo unreadable")

    def broken_disk(path: Path) -> Usage:
        raise OSError(5, "Input/output error")

    status = monitor(tmp_path, battery=battery, network=network, memory=broken_memory,
                     storage=StorageMonitor(disk_usage=broken_disk))
    snapshot = status.snapshot()
    assert_schema(snapshot)
    assert snapshot["battery"] is None
    assert snapshot["network"]["status"] == "offline"
    assert snapshot["memory"]["total_bytes"] == 0
    assert snapshot["storage"]["level"] == "danger"
    assert not snapshot["device_healthy"] and "Input/output error" in snapshot["device_error"]
    assert len(snapshot["warnings"]) == 3


def test_thread_publishes_writes_the_file_and_stops(tmp_path: Path) -> None:
    published: list[dict] = []
    got_three = threading.Event()

    def publish(snapshot: dict) -> None:
        published.append(snapshot)
        if len(published) >= 3:
            got_three.set()

    network = FakeNetwork()
    battery = FakeBattery(None)
    status_file = tmp_path / "run" / "status.json"
    status = monitor(tmp_path, publish=publish, status_file=status_file, interval_s=0.02,
                     network=network, battery=battery)
    status.start()
    try:
        assert network.running
        assert got_three.wait(timeout=10)
    finally:
        status.close()
    assert not network.running and battery.closed
    on_disk = json.loads(status_file.read_text())
    assert_schema(on_disk)
    assert on_disk["time"] in [snapshot["time"] for snapshot in published]
    assert [p.name for p in status_file.parent.iterdir()] == ["status.json"]  # no temp files
    assert status_file.stat().st_mode & 0o777 == 0o644


def test_a_failing_publish_or_status_file_does_not_stop_the_thread(tmp_path: Path) -> None:
    calls = threading.Semaphore(0)

    def publish(snapshot: dict) -> None:
        calls.release()
        raise RuntimeError("client went away")

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    status = monitor(tmp_path, publish=publish, status_file=blocker / "status.json",
                     interval_s=0.01)
    status.start()
    try:
        for _ in range(3):
            assert calls.acquire(timeout=10)
    finally:
        status.close()


def test_a_reader_never_sees_a_partial_status_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    padding = "x" * 200_000  # large enough that a non-atomic write would be seen half done
    write_json_atomic(path, {"n": -1, "padding": padding})
    done = threading.Event()
    seen: set[int] = set()
    bad: list[str] = []

    def read() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                data = json.loads(text)
            except ValueError:
                bad.append(text[-40:])
                continue
            if data["padding"] != padding:
                bad.append("padding cut")
            seen.add(data["n"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(200):
            write_json_atomic(path, {"n": n, "padding": padding})
    finally:
        done.set()
        reader.join()
    assert not bad
    assert len(seen) > 1  # the reader really overlapped the rewrites
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
