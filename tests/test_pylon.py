"""Basler cameras through pypylon, on pylon's camera emulation (PYLON_CAMEMU): software
trigger per frame set, the device's frame counter in the files, a camera-side loss
reported with its frame number, hardware trigger configured, and clear errors."""

from __future__ import annotations

import builtins
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

# pylon reads this when it first lists cameras, here and in every camera process.
os.environ.setdefault("PYLON_CAMEMU", "3")
pylon = pytest.importorskip("pypylon.pylon", reason="pypylon is not installed")

from engine.capture.group import CaptureGroup  # noqa: E402
from engine.recording.manifest import read_manifest  # noqa: E402
from engine.recording.timestamps import read_timestamps  # noqa: E402
from engine.recording.verify import verify_recording  # noqa: E402
from engine.sources import Kind, SettingRejected, SourceError, create_source, parse_source  # noqa: E402
from engine.sources.pylon_source import list_pylon_cameras  # noqa: E402
from engine.specs import CameraSpec  # noqa: E402
from tests.waiting import wait_for  # noqa: E402


def _record(folder: Path, seconds: float, settings: list[dict[str, Any]]) -> Path:
    specs = [CameraSpec(f"cam{i}", f"pylon:{i}", 640, 480, 30.0, extra)
             for i, extra in enumerate(settings)]
    with CaptureGroup(specs) as group:
        recording = group.start_recording(folder, "h264", name="triggered")
        target = min(group.counts()) + round(seconds * 30)
        wait_for(lambda: min(group.counts()) >= target, seconds * 3 + 10, "the take")
        group.stop_recording()
    return recording.folder


def _check_triggered_take(folder: Path, lost_at: dict[str, list[int]]) -> None:
    report = verify_recording(folder)
    assert report.ok, report
    manifest = read_manifest(folder)
    counts = {camera["frames"] for camera in manifest["cameras"]}
    assert len(counts) == 1, counts
    for camera in manifest["cameras"]:
        columns = read_timestamps(folder / camera["timestamps"])
        counters, repeats = columns["device_frame"], columns["repeat"]
        expected = lost_at.get(camera["id"], [])
        assert report.cameras[camera["id"]]["camera_dropped_at"] == expected
        assert camera["dropped"] == len(expected)
        # One exposure per set: the counter advances by one a row, but across a lost
        # exposure (its row repeats the frame before, and the next skips its number).
        steps = np.diff(counters)
        lost_rows = [int(np.flatnonzero(columns["frame"] == frame)[0]) for frame in expected]
        assert list(np.flatnonzero(repeats)) == lost_rows
        assert all(step == 1 for row, step in enumerate(steps, 1)
                   if row not in lost_rows and row - 1 not in lost_rows)
        assert (counters >= 0).all() and (columns["device_ns"] == -1).all()  # emulation: no clock


def test_three_triggered_cameras_record_one_exposure_per_frame_set(tmp_path):
    """The second camera's emulator fails its 100th exposure: that set repeats its
    previous frame, and verify names the frame where the camera lost one."""
    folder = _record(tmp_path, 5.0, [{}, {"failed_buffer_after_frames": 100}, {}])
    timestamps = read_timestamps(folder / "timestamps" / "cam1.csv")
    lost = int(timestamps["frame"][np.flatnonzero(timestamps["repeat"])[0]])
    _check_triggered_take(folder, {"cam1": [lost]})
    text = verify_recording(folder).summary()
    assert f"1 exposure lost by the camera (at frame {lost})" in text
    assert "device frame counter consecutive" in text


@pytest.mark.slow
def test_three_triggered_cameras_record_thirty_seconds_at_thirty_fps(tmp_path):
    folder = _record(tmp_path, 30.0, [{}, {}, {}])
    _check_triggered_take(folder, {})
    assert read_manifest(folder)["cameras"][0]["frames"] >= 900


def test_hardware_trigger_is_set_on_the_line_and_edge_asked():
    source: Any = create_source("pylon:0", 0, 640, 480, 30.0,
                                {"trigger": "hardware", "trigger_line": "Line2",
                                 "trigger_edge": "FallingEdge"})
    source.open()
    try:
        camera = source._camera
        assert camera.TriggerMode.Value == "On"
        assert camera.TriggerSource.Value == "Line2"
        assert camera.TriggerActivation.Value == "FallingEdge"
        assert not source.free_running
    finally:
        source.close()


def test_the_cameras_pylon_lists_are_discovered_and_named_by_serial():
    cameras = list_pylon_cameras()
    assert len(cameras) >= 3
    assert cameras[0]["source"] == f"pylon:{cameras[0]['serial']}"
    assert parse_source(cameras[0]["source"]).kind is Kind.PYLON


def test_recorder_engine_cameras_lists_them():
    from engine.sources.discovery import list_cameras

    listed = [camera for camera in list_cameras(timeout_s=1.0, network_timeout_s=0)
              if camera["kind"] == "pylon"]
    assert [camera["source"] for camera in listed] == [
        camera["source"] for camera in list_pylon_cameras()]
    assert "Basler Emulation (serial 0815-0000)" in listed[0]["description"]


def test_an_unknown_camera_is_named_with_those_pylon_sees():
    source = create_source("pylon:no-such-serial", 0, 640, 480, 30.0)
    with pytest.raises(SourceError, match=r"no-such-serial.*pylon sees: 0815-0000"):
        source.open()
    with pytest.raises(SourceError, match="names none"):
        parse_source("pylon:")


def test_without_pypylon_the_error_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def without_pypylon(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pypylon"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_pypylon)
    with pytest.raises(SourceError, match=r"recorder-workstation\[pylon\]"):
        create_source("pylon:0", 0, 640, 480, 30.0).open()


def test_the_settings_are_the_cameras_own_features_with_their_limits():
    """The dialog's settings come from the camera's GenICam feature tree; a change is
    checked against the camera's limits, set, and read back; a rig's value is set when
    the camera opens."""
    source: Any = create_source("pylon:0", 0, 640, 480, 30.0, {"ExposureTime": 5000})
    source.open()
    try:
        specs = {spec.name: spec for spec in source.properties()}
        exposure = specs["ExposureTime"]
        node = source._camera.GetNodeMap().GetNode("ExposureTime")
        assert (exposure.kind, exposure.minimum, exposure.maximum) == \
            ("float", node.GetMin(), node.GetMax())
        assert exposure.value == node.GetValue() == 5000
        assert specs["GainAuto"].choices == tuple(source._camera.GainAuto.Symbolics)
        assert "TriggerMode" not in specs and "PixelFormat" not in specs  # the source's own
        assert specs["SensorWidth"].read_only
        settings = source.apply({"ExposureTime": 12345.0, "GainAuto": "Off"})
        assert settings["ExposureTime"] == node.GetValue() == 12345.0
        with pytest.raises(SettingRejected, match="ExposureTime must be >= 1"):
            source.apply({"ExposureTime": -5})
    finally:
        source.close()


@pytest.mark.parametrize(("codec", "gray"), [("h264", "gray"), ("ffv1", "gray"),
                                              ("mjpeg", "yuvj420p")])
def test_a_mono_camera_is_recorded_as_gray_video(tmp_path, codec, gray):
    """pixel_format Mono8 beside a colour camera: one channel all the way (ring, encoder,
    file, where the codec has a gray mode), named in the manifest and read by ffprobe."""
    specs = [CameraSpec("mono", "pylon:0", 640, 480, 30.0, {"pixel_format": "Mono8"}),
             CameraSpec("colour", "pylon:1", 640, 480, 30.0)]
    with CaptureGroup(specs) as group:
        recording = group.start_recording(tmp_path, codec, name="mono")
        target = min(group.counts()) + 30
        wait_for(lambda: min(group.counts()) >= target, 15, "a second of frame sets")
        group.stop_recording()
    report = verify_recording(recording.folder)
    assert report.ok, report.summary()
    mono, colour = read_manifest(recording.folder)["cameras"]
    assert (mono["settings"]["camera_pixel_format"], mono["settings"]["channels"]) == (
        "Mono8", 1)
    assert colour["settings"]["channels"] == 3
    assert mono["frames"] == colour["frames"] >= 30
    assert mono["pix_fmt"] == gray and (colour["pix_fmt"] != gray or codec == "mjpeg")
    path = str(recording.folder / mono["file"])
    if codec == "h264":  # FFmpeg decodes 4:0:0 H.264 to yuv420p; the stream's SPS says mono
        trace = subprocess.run(
            ["ffmpeg", "-v", "trace", "-i", path, "-frames:v", "1", "-c", "copy", "-bsf:v",
             "trace_headers", "-f", "null", "-"], capture_output=True, text=True).stderr
        assert re.search(r"chroma_format_idc\s+\d+ = 0\b", trace), trace[-2000:]
    else:
        assert subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=pix_fmt", "-of", "csv=p=0", path],
            capture_output=True, text=True, check=True).stdout.strip() == gray
    with av.open(str(recording.folder / mono["file"])) as container:
        picture = next(container.decode(video=0)).to_ndarray(format="gray")
    assert picture.shape == (480, 640) and picture.std() > 1  # the emulator's test image
