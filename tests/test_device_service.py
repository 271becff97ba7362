"""The engine publishes the device status and guards the disk (real engines, real disks)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from engine.client import EngineCommandError
from engine.recording.verify import verify_recording
from engine.wire.events import EVENTS
from tests.engines import RIG, Engine
from tests.test_crash_safety import mount_tmpfs
from tests.waiting import wait_for

SCHEMA_KEYS = {"time", "device_id", "software_version", "uptime_seconds", "engine_state", "cpu",
               "memory", "storage", "network", "recording", "battery", "device_healthy",
               "device_error", "warnings"}


def test_device_status_is_published_in_status_and_in_the_status_file(tmp_path):
    engine = Engine(tmp_path, RIG.replace('name = "test rig"',
                                          'name = "test rig"\n[device]\ndevice_id = "bench-7"'))
    try:
        events: list[dict] = []
        with engine.client() as client:
            client.subscribe(lambda event: events.append(EVENTS.to_wire(event)))
            device = wait_for(lambda: next((e for e in events if e["event"] == "device"), None),
                              5, "a device event")
            client.record()
            recording = wait_for(lambda: next((e for e in reversed(events)
                                               if e["event"] == "device"
                                               and e["recording"]["active"]), None),
                                 5, "a device event while recording")
            client.stop()
            status = client.status()
        status_file = json.loads((engine.folder / "device-status.json").read_text())
    finally:
        engine.stop()
    assert set(device) >= SCHEMA_KEYS and set(status["device"]) >= SCHEMA_KEYS
    assert set(status_file) >= SCHEMA_KEYS
    assert device["device_id"] == "bench-7" and device["battery"] is None  # no HAT here
    assert device["engine_state"] == "running"
    assert recording["engine_state"] == "recording" and recording["recording"]["id"]
    assert device["storage"]["free_bytes"] > 0
    assert 0.0 <= device["cpu"]["usage_percent"] <= 100.0


def test_a_recording_is_refused_when_the_disk_is_below_the_stop_threshold(tmp_path):
    rig = RIG.replace('name = "test rig"',
                      'name = "test rig"\n[device]\ndisk_warn_below_gb = 1e9\n'
                      'disk_stop_below_gb = 1e9')
    engine = Engine(tmp_path, rig)
    try:
        with engine.client() as client, pytest.raises(EngineCommandError, match="GB free in"):
            client.record()
    finally:
        engine.stop()
    assert not engine.output.exists() or not any(engine.output.iterdir())


def test_a_recording_stops_cleanly_before_the_disk_fills(tmp_path):
    small = tmp_path / "small"
    if not mount_tmpfs(small, "40m"):
        pytest.skip("needs root to mount a small tmpfs")
    rig = RIG.replace('output = "{output}"', f'output = "{small}"').replace(
        'name = "test rig"', 'name = "test rig"\n[device]\ndisk_warn_below_gb = 0.036\n'
                             'disk_stop_below_gb = 0.03').replace('codec = "mjpeg"',
                                                                  'codec = "ffv1"')
    engine = Engine(tmp_path, rig)
    try:
        events: list[dict] = []
        with engine.client() as client:
            client.subscribe(lambda event: events.append(EVENTS.to_wire(event)))
            client.record()
            finalized = wait_for(lambda: next((e for e in events
                                               if e["event"] == "recording_finalized"), None),
                                 60, "the recording stopped by the disk guard")
        errors = [e["message"] for e in events if e["event"] == "error"]
        report = verify_recording(Path(finalized["folder"]))
    finally:
        engine.stop()
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert any("disk almost full" in message for message in errors), errors
    assert finalized["status"] == "finalized"
    assert report.ok, report.summary()
    assert len(set(finalized["frames"].values())) == 1
