"""A recording folder as a reader finds it, from real takes of real capture groups: every
timestamps file numbers its video's frames from 0 (frame_index) whatever the group's
frame-set numbers (frame) had reached, the folder explains itself (README.txt), and no
lock file is left once the take is finished or recovered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.recording.finalize import LOCK_NAME, recover
from engine.recording.folder_readme import README_NAME, readme_text
from engine.recording.manifest import read_manifest
from engine.recording.segments import frame_numbers, manifest_segments
from engine.recording.stamp_band import top_rows
from engine.recording.sync_report import SYNC_REPORT_NAME
from engine.recording.timestamps import COLUMN_MEANINGS, TIMESTAMP_COLUMNS, read_timestamps
from engine.recording.verify import verify_recording
from engine.sensors.base import STAMP_COLUMN_MEANINGS, STAMP_COLUMNS
from engine.sensors.sidecar import read_sidecar
from engine.sources import framecode
from engine.specs import CameraSpec, SensorSpec
from tests.conftest import leak_guard, tool_or_skip
from tests.test_crash_safety import kill_tree
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parent.parent
FPS = 30.0
SMALL = {"width": 256, "height": 192}


def rig(n: int) -> list[CameraSpec]:
    return [CameraSpec(f"cam{i}", "synthetic", fps=FPS, **SMALL) for i in range(n)]


def ffprobe_frames(path: Path) -> int:
    """Frames ffprobe decodes in the file's video stream."""
    command = [tool_or_skip("ffprobe"), "-v", "error", "-count_frames", "-select_streams",
               "v:0", "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return int(json.loads(result.stdout)["streams"][0]["nb_read_frames"])


def burned_frame_numbers(path: Path, camera: int) -> list[int]:
    """The group frame number a gated synthetic camera burned into each decoded frame,
    in the order PyAV decodes them (pts order)."""
    numbers = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = []
        for frame in container.decode(stream):
            stamp = framecode.read(top_rows(frame, framecode.band_height(frame.width)))
            assert stamp is not None and stamp[1] == camera, stamp
            numbers.append(stamp[0])
            pts.append(frame.pts)
    assert pts == sorted(pts)
    return numbers


def described(readme: str, columns: list[str] | tuple[str, ...]) -> list[str]:
    """The columns README.txt lists as entries of their own (an indented line naming it)."""
    entries = {line.strip() for line in readme.splitlines() if line.startswith("    ")
               and not line.startswith("        ")}
    return [column for column in columns if column in entries]


def assert_take_folder(folder: Path, status: str) -> dict:
    """The folder verifies; in every camera, row k of its timestamps is video frame k
    (frame_index k, and the picture the camera burned for frame set `frame`); `frame` is
    the group's number, identical across cameras; README.txt explains every column; no
    lock file is left."""
    report = verify_recording(folder)
    assert report.ok, report.summary()
    manifest = read_manifest(folder)
    assert manifest["status"] == status
    expected = np.fromiter(frame_numbers(manifest_segments(manifest)), np.int64)
    frames_by_camera = []
    for camera in manifest["cameras"]:
        path = folder / camera["timestamps"]
        assert path.read_text().splitlines()[0] == ",".join(TIMESTAMP_COLUMNS)
        columns = read_timestamps(path)
        rows = len(columns["frame_index"])
        assert rows == camera["frames"] > 0
        assert columns["frame_index"].tolist() == list(range(rows))
        assert ffprobe_frames(folder / camera["file"]) == rows
        burned = burned_frame_numbers(folder / camera["file"], camera["index"])
        assert burned == columns["frame"].tolist()  # video frame k is row k's frame set
        assert columns["frame"].tolist() == expected.tolist()
        frames_by_camera.append(columns["frame"].tolist())
    assert all(frames == frames_by_camera[0] for frames in frames_by_camera)
    readme = (folder / README_NAME).read_text()
    assert readme == readme_text(folder.name, [c["id"] for c in manifest["cameras"]])
    assert described(readme, TIMESTAMP_COLUMNS) == list(TIMESTAMP_COLUMNS)
    for column in TIMESTAMP_COLUMNS:
        assert " ".join(COLUMN_MEANINGS[column].split()[:6]) in " ".join(readme.split())
    assert not (folder / LOCK_NAME).exists()
    return manifest


def test_every_column_of_the_files_is_described_in_the_readme():
    assert set(COLUMN_MEANINGS) == set(TIMESTAMP_COLUMNS)
    assert set(STAMP_COLUMN_MEANINGS) == set(STAMP_COLUMNS)
    readme = readme_text("take", ["cam0", "cam1"])
    assert described(readme, TIMESTAMP_COLUMNS) == list(TIMESTAMP_COLUMNS)
    assert described(readme, STAMP_COLUMNS) == list(STAMP_COLUMNS)
    assert "cam0.mkv, cam1.mkv" in readme and "timestamps/cam1.csv" in readme


def test_takes_of_a_group_that_has_run_a_while_number_their_video_frames_from_0(tmp_path):
    """Two takes in a row from one group, the second with a writing pause: the group's
    frame-set numbers are far from 0 by then, and each file still counts its frames
    0, 1, 2, ... in frame_index, matching what ffprobe and PyAV decode."""
    with leak_guard(), CaptureGroup(rig(2), sensors=[SensorSpec("imu", "imu:synthetic")]
                                    ) as group:
        wait_for(lambda: min(group.counts()) > 45, 20, "the group to run a while")
        first = group.start_recording(tmp_path, "h264", "first")
        wait_for(lambda: min(group.counts()) > first.first_frame + 20, 10, "frames recorded")
        group.stop_recording()
        second = group.start_recording(tmp_path, "h264", "second")
        wait_for(lambda: min(group.counts()) > second.first_frame + 15, 10, "frames recorded")
        group.pause()
        paused_at = min(group.counts())
        wait_for(lambda: min(group.counts()) > paused_at + 10, 10, "a pause")
        group.resume()
        resumed_at = min(group.counts())
        wait_for(lambda: min(group.counts()) > resumed_at + 15, 10, "frames after resume")
        group.stop_recording()

    assert first.first_frame > 45
    assert second.first_frame >= read_manifest(first.folder)["last_frame"]
    assert_take_folder(first.folder, "finalized")
    manifest = assert_take_folder(second.folder, "finalized")
    assert len(manifest["segments"]) == 2  # the frame numbers jump, frame_index does not
    # The sensor's frame column is the group's frame-set number too (as README.txt says).
    header, rows = read_sidecar(second.folder / "sensors" / "imu.csv")
    assert header[:len(STAMP_COLUMNS)] == list(STAMP_COLUMNS)
    sampled = [int(row[header.index("frame")]) for row in rows]
    assert min(sampled) >= first.first_frame and max(sampled) >= manifest["last_frame"] - 2
    assert {"frame_sets", "p50_ms", "stamp", "cameras"} <= set(
        json.loads((second.folder / SYNC_REPORT_NAME).read_text()))


_CRASHING_TAKE = """
import sys, time
from pathlib import Path
from engine.capture.group import CaptureGroup
from tests.test_recording_folder import rig
with CaptureGroup(rig(2)) as group:
    while min(group.counts()) <= 45:
        time.sleep(0.02)
    recording = group.start_recording(Path(sys.argv[1]), "h264", "crashed")
    print(recording.folder, recording.first_frame, flush=True)
    time.sleep(120)
"""


def test_a_take_killed_mid_write_is_recovered_with_its_readme_and_without_its_lock(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", _CRASHING_TAKE, str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        folder, first_frame = Path(line.split()[0]), int(line.split()[1])
        timestamps = folder / "timestamps" / "cam1.csv"
        wait_for(lambda: timestamps.read_text().count("\n") > 40, 20, "frames written")
        assert (folder / README_NAME).is_file() and (folder / LOCK_NAME).is_file()
    finally:
        kill_tree(process)
    assert read_manifest(folder)["status"] == "recording"
    assert (folder / LOCK_NAME).exists()  # what the killed writer left

    [result] = recover(tmp_path)

    assert result["status"] == "recovered", result
    assert first_frame > 45
    manifest = assert_take_folder(folder, "recovered")
    assert manifest["first_frame"] == first_frame
    assert recover(tmp_path) == []
