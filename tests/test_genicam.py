"""GenICam cameras through Aravis, on Aravis's fake GigE Vision camera (a real GigE Vision
device protocol on 127.0.0.1): it records beside a synthetic camera with its own frame
counter and clock in the files, and its settings dialog shows its real features."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.recording.manifest import read_manifest
from engine.recording.sync_report import GrabColumns, compute_spread, device_clocks
from engine.recording.timestamps import read_timestamps
from engine.recording.verify import verify_recording
from engine.sources import SourceError, create_source
from engine.sources.aravis_source import _aravis
from engine.specs import CameraSpec
from tests.source_engine import SourceEngine
from tests.test_supervisor import camera_rig, cameras, engines, synthetic  # noqa: F401
from tests.waiting import wait_for

FAKE_CAMERA = "arv-fake-gv-camera-0.8"
_GVCP_ON_LOOPBACK = "0100007F:0F74"  # /proc/net/udp's 127.0.0.1:3956
_serials = itertools.count(1)


class FakeCamera:
    """Aravis's fake GigE Vision camera on the loopback interface, started and killed at
    will (a camera plugged in and pulled out)."""

    def __init__(self) -> None:
        self.serial = f"TEST{next(_serials):02d}"
        self.device = f"Aravis-Fake-{self.serial}"  # its Aravis device id
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen([FAKE_CAMERA, "-i", "127.0.0.1", "-s", self.serial],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Bound to GigE Vision's control port, it answers discovery; asking (a discovery
        # takes Aravis 1 s) would only make the wait longer.
        wait_for(lambda: _GVCP_ON_LOOPBACK in Path("/proc/net/udp").read_text(), 10,
                 "the fake camera on GigE Vision's control port")

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None


@pytest.fixture
def fake() -> Iterator[FakeCamera]:
    if shutil.which(FAKE_CAMERA) is None:
        pytest.skip(f"{FAKE_CAMERA} is not installed (Debian: aravis-tools)")
    try:
        _aravis()
    except SourceError as exc:
        pytest.skip(str(exc))
    camera = FakeCamera()
    try:
        camera.start()
        yield camera
    finally:
        camera.kill()


@pytest.fixture
def fake_camera(fake: FakeCamera) -> str:
    """The running fake camera's Aravis device id."""
    return fake.device


def test_the_fake_camera_records_beside_a_synthetic_camera(tmp_path, fake_camera):
    """Free-running (the fake camera makes its frames on its own clock, whatever the
    trigger): its frame counter and clock go into the files, and its clock is mapped onto
    the engine's: each exposure lands a few ms before its frame arrived, at the moment
    the fake camera really made it (its clock is this machine's CLOCK_REALTIME)."""
    specs = [CameraSpec("gige", f"genicam:{fake_camera}", 640, 480, 25.0, {"trigger": "free"}),
             CameraSpec("cam1", "synthetic", 640, 480, 25.0)]
    realtime_ahead = time.time_ns() - time.monotonic_ns()
    with CaptureGroup(specs) as group:
        recording = group.start_recording(tmp_path, "h264", name="gige")
        target = min(group.counts()) + 100
        wait_for(lambda: min(group.counts()) >= target, 20, "four seconds of frame sets")
        group.stop_recording()
    # A free-running camera's frame is up to a period older than its set's moment; the
    # fake camera, a process of its own, may be late on a loaded machine (its sets repeat).
    report = verify_recording(recording.folder)
    assert all(line.startswith("sync:") for line in report.problems), report.summary()
    assert fresh_spread_p99_ms(recording.folder, ("gige", "cam1")) <= 2 * 40.0
    manifest = read_manifest(recording.folder)
    assert manifest["cameras"][0]["frames"] == manifest["cameras"][1]["frames"] >= 100
    columns = read_timestamps(recording.folder / "timestamps" / "gige.csv")
    # The camera's own counter (GigE Vision's 16-bit block id wraps; a repeat steps 0).
    assert (np.diff(columns["device_frame"]) % 2**16 < 5).all()
    assert (np.diff(columns["device_ns"]) >= 0).all()  # and clock
    assert (read_timestamps(recording.folder / "timestamps" / "cam1.csv")["device_frame"]
            == -1).all()  # a synthetic camera has no counter of its own
    sync = json.loads((recording.folder / "sync_report.json").read_text())
    assert set(sync["device_clocks"]) == {"gige"}
    assert sync["exposure"]["stamps"] == {"gige": "device_ns", "cam1": "capture_ns"}
    gige = {"cameras": manifest["cameras"][:1]}
    mapped = device_clocks(gige, {"gige": columns})["gige"].to_host(columns["device_ns"])
    early_ms = (columns["capture_ns"] - mapped) / 1e6  # capture_ns: its arrival
    made_ms = (mapped - (columns["device_ns"] - realtime_ahead)) / 1e6
    assert (early_ms >= 0).all() and np.median(early_ms) < 20, early_ms
    assert (made_ms >= -1).all() and (made_ms < 15).all(), made_ms


def test_a_camera_that_ignores_its_software_trigger_fails_verify(tmp_path, fake_camera):
    """The fake camera makes its frames on its own 25 Hz clock even in trigger mode: fired
    at 20 Hz, its own clock shows the exposures spread over its whole period after the
    triggers, which verify names (a real camera left in free run, or triggered from the
    wrong source). Fired faster than it runs, the sets would wait for its frames and fall
    into its rhythm: a steady lag, which timing cannot tell from a camera that follows."""
    result = subprocess.run(
        [sys.executable, "-m", "engine", "record", "--camera", f"genicam:{fake_camera}",
         "--trigger", "software", "--fps", "20", "--seconds", "3", "--output",
         str(tmp_path), "--name", "ignored"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = read_manifest(tmp_path / "ignored")
    assert manifest["cameras"][0]["capture_clock"] == "trigger"
    report = verify_recording(tmp_path / "ignored")
    assert not report.ok
    assert any("do not follow the software trigger" in line for line in report.problems)
    sync = json.loads((tmp_path / "ignored" / "sync_report.json").read_text())
    lag = sync["device_clocks"]["cam0"]["exposure_after_trigger_ms"]
    assert lag["follows_trigger"] is False and lag["p99"] - lag["p1"] > 10


def test_its_settings_dialog_shows_its_real_features_with_their_limits(qtbot, fake_camera):
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox

    from recorder_gui.engine_link import EngineLink
    from recorder_gui.settings_dialog import SettingsDialog

    source: Any = create_source(f"genicam:{fake_camera}", 0, 640, 480, 25.0)
    source.open()
    engine = SourceEngine(source)
    try:
        dialog = SettingsDialog(EngineLink(engine), "gige")  # type: ignore[arg-type]
        qtbot.addWidget(dialog)
        device = engine.source._camera.get_device()
        exposure = dialog.editors["ExposureTimeAbs"]
        assert isinstance(exposure, QDoubleSpinBox)
        bounds = device.get_float_feature_bounds("ExposureTimeAbs")
        assert (exposure.minimum(), exposure.maximum()) == (bounds.min, bounds.max)
        gain_auto = dialog.editors["GainAuto"]
        assert isinstance(gain_auto, QComboBox)
        assert [gain_auto.itemText(i) for i in range(gain_auto.count())] == list(
            device.dup_available_enumeration_feature_values_as_strings("GainAuto"))
        exposure.setValue(4000.0)
        assert dialog.apply()
        assert device.get_float_feature_value("ExposureTimeAbs") == 4000.0  # read back
    finally:
        engine.source.close()


def test_an_unknown_camera_is_named_with_those_aravis_sees(fake_camera):
    with pytest.raises(SourceError, match=f"no-such.*Aravis sees: .*{fake_camera}"):
        create_source("genicam:no-such", 0, 640, 480, 25.0).open()


def test_cameras_lists_it(fake_camera):
    from engine.sources.discovery import list_cameras

    listed = [camera["source"] for camera in list_cameras(1.0, 0)
              if camera["kind"] == "genicam"]
    assert f"genicam:{fake_camera}" in listed


GENICAM_CAMERA = """
[[cameras]]
id = "gige"
source = "genicam:{device}"
width = 320
height = 240
fps = 25.0
[cameras.settings]
read_timeout_ms = 500
"""


# `fake` before `engines`: the engine stops while the camera answers (a camera that is gone
# keeps its process in a read for read_timeout_ms, 5 s, before the stop is seen).
def test_a_camera_pulled_out_mid_take_ends_it_and_is_restarted_when_back(fake, engines):  # noqa: F811
    """The fake camera killed mid-take: the take ends for every camera at the last frame
    set they all completed (its files verify, counts identical); the supervisor restarts
    the camera once it answers again."""
    # The rig's trigger for its machine-vision cameras: free, as the fake camera runs (it
    # ignores triggers), so its frames are up to a period older than the set's moment.
    rig = camera_rig(synthetic("local", fps=25.0) + GENICAM_CAMERA.format(device=fake.device)
                     .replace("{", "{{").replace("}", "}}"),
                     recording='trigger = "free"\nsync_tolerance_ms = 80.0\n')
    engine = engines.start(rig)
    with engine.client() as client:
        wait_for(lambda: {c["status"] for c in cameras(client).values()} == {"running"}, 20,
                 "both cameras running")
        client.record()
        frames = cameras(client)["gige"]["frames"]
        wait_for(lambda: cameras(client)["gige"]["frames"] > frames + 25, 10, "a second taken")
        fake.kill()
        wait_for(lambda: client.status()["recording"] is None, 15, "the take to end")
        fake.start()
        wait_for(lambda: cameras(client)["gige"]["status"] == "running", 30,
                 "the supervisor to restart the camera")
        assert cameras(client)["gige"]["restarts"] >= 1
    (folder,) = engine.output.iterdir()
    manifest = read_manifest(folder)
    assert manifest["status"] == "interrupted"  # a take a camera failure ended
    # Named by whichever sees it first: the camera's read timeout or the stall watch.
    assert len(manifest["errors"]) == 1 and manifest["errors"][0].startswith("gige")
    counts = {camera["frames"] for camera in manifest["cameras"]}
    assert len(counts) == 1 and counts.pop() >= 25
    assert manifest["cameras"][1]["settings"]["trigger"] == "free"
    # Until its read timeout says it is gone, the camera's sets repeat its last frame,
    # marked: those are the only sets far apart in time, and the only thing verify finds.
    report = verify_recording(folder)
    assert all(line.startswith("sync:") for line in report.problems), report.summary()
    repeats = read_timestamps(folder / "timestamps" / "gige.csv")["repeat"]
    assert len(repeats) - 1 - int(np.nonzero(repeats == 0)[0][-1]) <= 500 / 40 + 2
    assert fresh_spread_p99_ms(folder, ("local", "gige")) <= 80.0


def fresh_spread_p99_ms(folder: Path, cameras: tuple[str, ...]) -> float:
    """The capture spread (p99) of the frame sets where no camera repeated a frame."""
    columns = {camera: read_timestamps(folder / "timestamps" / f"{camera}.csv")
               for camera in cameras}
    fresh = np.all([table["repeat"] == 0 for table in columns.values()], axis=0)
    return float(compute_spread({
        camera: GrabColumns(frame=table["frame"][fresh],
                            after_grab_ns=table["after_grab_ns"][fresh],
                            capture_ns=table["capture_ns"][fresh])
        for camera, table in columns.items()}, "capture_ns")["p99_ms"])
