"""Network cameras recorded by stream copy: the camera's own H.264 packets in the file,
every packet once and in order, beside other cameras with the same frame sets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.recording.stamp_sync import UNREAD, measure_stamp_sync
from engine.recording.timestamps import read_timestamps
from engine.recording.verify import verify_recording
from engine.rig.model import demo_camera_settings
from engine.specs import CameraSpec
from tests.conftest import leak_guard
from tests.stamped_servers import StampedServers
from tests.test_crash_safety import kill_tree
from tests.waiting import wait_for


def _ffprobe_frames(path) -> tuple[str, int, int, int]:
    """(codec, width, height, frames counted by decoding) as ffprobe sees the file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True)
    stream = json.loads(out.stdout)["streams"][0]
    return (stream["codec_name"], stream["width"], stream["height"],
            int(stream["nb_read_frames"]))


def _record(tmp_path, seconds: float, second: str | None = None) -> None:
    """Record `seconds` of a stamped RTSP camera (copy) beside a free-running synthetic
    camera, or beside the stamped MJPEG camera `second` names."""
    servers = StampedServers()
    try:
        url = servers.rtsp(1280, 720, 30)
        other = (CameraSpec("mjpeg", servers.mjpeg(640, 480, 30), 640, 480, 30.0)
                 if second == "mjpeg" else
                 CameraSpec("synth", "synthetic", 640, 480, 30.0, demo_camera_settings(0)))
        with CaptureGroup([CameraSpec("rtsp", url, 1280, 720, 30.0), other]) as group:
            recording = group.start_recording(tmp_path, "h264", name="take")
            first = recording.first_frame
            wait_for(lambda: min(group.counts()) >= first + seconds * 30, seconds + 30,
                     f"{seconds} s recorded")
            group.stop_recording()
    finally:
        servers.stop()


@pytest.mark.slow  # 12 s against a real RTSP server: .ci/run's slow step
def test_a_copied_rtsp_camera_keeps_every_packet_and_the_frame_sets(tmp_path):
    with leak_guard():
        _record(tmp_path, 8)
    folder = tmp_path / "take"
    report = verify_recording(folder)
    assert report.ok, report.summary()
    manifest = json.loads((folder / "recording.json").read_text())
    cameras = {camera["id"]: camera for camera in manifest["cameras"]}
    assert cameras["rtsp"]["recorded_as"] == "copy"
    assert cameras["synth"]["recorded_as"] == "encode"
    # Every file decodes, all to the same count; the copy is the camera's own 720p H.264.
    rtsp = _ffprobe_frames(folder / cameras["rtsp"]["file"])
    synth = _ffprobe_frames(folder / cameras["synth"]["file"])
    assert rtsp[:3] == ("h264", 1280, 720)
    assert rtsp[3] == synth[3] > 6 * 30
    # The take waited for the camera's keyframe (one a second at most): the sets before it
    # are in no file, and the manifest's segments say so.
    first_segment = manifest["segments"][0][0]
    assert manifest["first_frame"] <= first_segment <= manifest["first_frame"] + 31
    # Every packet once and in order: the stamped server's frame counters step by one.
    sync = measure_stamp_sync(folder)
    counters = sync.counters[sync.cameras.index("rtsp")]
    assert (counters != UNREAD).all(), sync.summary()
    assert (np.diff(counters) == 1).all(), np.unique(np.diff(counters), return_counts=True)
    stamps = read_timestamps(folder / cameras["rtsp"]["timestamps"])
    assert not stamps["repeat"].any()


def test_a_copied_camera_and_a_decoded_one_show_the_same_moments(tmp_path):
    """Same count is not same moment: decode both files' stamps and compare them."""
    with leak_guard():
        _record(tmp_path, 8, "mjpeg")
    sync = measure_stamp_sync(tmp_path / "take")
    read = (sync.counters != UNREAD).all(axis=0)
    assert read.mean() > 0.99, sync.summary()
    # The MJPEG camera's frames come on its own clock, at any phase against the copied
    # camera's: a set takes its frame up to a period old plus its arrival jitter.
    spread_ms = sync.spread_ns[read] / 1e6
    assert np.median(spread_ms) < 1000 / 30 / 2, sync.summary()
    assert np.percentile(spread_ms, 95) < 2 * 1000 / 30, sync.summary()


def test_a_killed_engine_leaves_a_copied_file_recover_salvages(tmp_path):
    """SIGKILL mid-take: the copy file reads up to its last whole packet; recover makes the
    take final with all files at the same count."""
    servers = StampedServers()
    try:
        url = servers.rtsp(640, 480, 30)
        command = [sys.executable, "-m", "engine", "record", "--camera", url,
                   "--camera", "synthetic", "--seconds", "60", "--output", str(tmp_path),
                   "--name", "killed"]
        # The engine's output goes to a file: a pipe nobody reads would block it once full,
        # and a failure shows what it said.
        log = tmp_path / "engine.log"
        with leak_guard(), log.open("wb") as output:
            engine = subprocess.Popen(command, start_new_session=True,
                                      stdout=output, stderr=subprocess.STDOUT)
            try:
                timestamps = tmp_path / "killed" / "timestamps" / "cam0.csv"
                recorded_3_s = wait_for(lambda: (timestamps.is_file()
                                                 and timestamps.read_text().count("\n") > 90)
                                        or engine.poll() is not None, 60, "3 s recorded")
                assert recorded_3_s is True and engine.poll() is None, "the engine ended first"
            except AssertionError as error:
                raise AssertionError(f"{error}\nthe engine said:\n{log.read_text()}") from None
            finally:
                kill_tree(engine)  # and sweep its rings, which no process is left to unlink
            recorded = timestamps.read_text().count("\n") - 1
            recover = subprocess.run([sys.executable, "-m", "engine", "recover",
                                      str(tmp_path / "killed")], capture_output=True, text=True,
                                     timeout=120)
    finally:
        servers.stop()
    assert recover.returncode == 0, recover.stdout + recover.stderr
    folder = tmp_path / "killed"
    report = verify_recording(folder)
    # The group-triggered synthetic camera makes its frame when its set comes, which is
    # the copied camera's latency after that camera's frame: only the spread may fail.
    assert all(problem.startswith("sync:") for problem in report.problems), report.summary()
    copy = _ffprobe_frames(folder / "cam0.mkv")
    other = _ffprobe_frames(folder / "cam1.mkv")
    assert copy[0] == "h264" and copy[3] == other[3]
    assert copy[3] >= recorded - 30, (copy, recorded)  # a second at most lost


@pytest.mark.slow  # 12 s against a real RTSP server: .ci/run's slow step
def test_a_copied_camera_rides_out_a_server_outage(tmp_path):
    """The server goes mid-take: the take ends on the last common frame set with files
    that decode to the same count; the camera reconnects when the server is back on its
    port, rejoins by copy, and the next take records it whole."""
    with leak_guard():
        servers, back = StampedServers(), StampedServers()
        try:
            url = servers.rtsp(640, 480, 30)
            port = int(url.split(":")[2].split("/")[0])
            cameras = [CameraSpec("rtsp", url, 640, 480, 30.0, {"open_timeout_ms": 2000}),
                       CameraSpec("synth", "synthetic", 640, 480, 30.0,
                                  demo_camera_settings(0))]
            with CaptureGroup(cameras) as group:
                def status() -> str:
                    return next(c["status"] for c in group.snapshot()["cameras"]
                                if c["id"] == "rtsp")

                first = group.start_recording(tmp_path, "h264", name="cut")
                wait_for(lambda: min(group.counts()) > first.first_frame + 90, 20,
                         "3 s recorded")
                servers.stop()
                wait_for(lambda: status() == "reconnecting", 10, "rtsp reconnecting")
                wait_for(lambda: group.recording is None, 30, "the cut take ended")
                back.rtsp(640, 480, 30, port=port)
                wait_for(lambda: status() == "running", 30, "rtsp back in the gate")
                second = group.start_recording(tmp_path, "h264", name="after")
                wait_for(lambda: min(group.counts()) > second.first_frame + 90, 20,
                         "3 s more")
                group.stop_recording()
        finally:
            servers.stop()
            back.stop()
    for name in ("cut", "after"):
        folder = tmp_path / name
        manifest = json.loads((folder / "recording.json").read_text())
        assert manifest["cameras"][0]["recorded_as"] == "copy", name
        frames = [_ffprobe_frames(folder / camera["file"])[3] for camera in manifest["cameras"]]
        assert frames[0] == frames[1] > 30, (name, frames)
    report = verify_recording(tmp_path / "after")
    assert report.ok, report.summary()


@pytest.mark.slow
def test_a_copied_rtsp_camera_records_a_minute_beside_a_synthetic_one(tmp_path):
    with leak_guard():
        _record(tmp_path, 60)
    folder = tmp_path / "take"
    report = verify_recording(folder)
    assert report.ok, report.summary()
    manifest = json.loads((folder / "recording.json").read_text())
    counts = {camera["id"]: _ffprobe_frames(folder / camera["file"])[3]
              for camera in manifest["cameras"]}
    assert counts["rtsp"] == counts["synth"] >= 59 * 30, counts
