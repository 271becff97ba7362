"""Recording folder files, on real files: videos, timestamps, manifest, sync report, verify."""

from __future__ import annotations

import json
import os
import subprocess
from fractions import Fraction
from multiprocessing import shared_memory
from pathlib import Path

import av
import numpy as np
import pytest

from engine.recording.encoder import CODECS, VideoEncoder, encode_throughput, synthetic_frame
from engine.recording.errors import RecordingError
from engine.recording.manifest import read_manifest, write_manifest
from engine.recording.sync_report import (
    SYNC_REPORT_NAME,
    SpreadStamp,
    compute_spread,
    frame_set_stamps,
    mean_offsets_ms,
    write_sync_report,
)
from engine.recording.sync_tolerance import (
    SyncTolerance,
    sync_failure,
    sync_held,
    sync_tolerance,
)
from engine.recording.timestamps import (
    OLD_TIMESTAMP_COLUMNS,
    TIMESTAMP_COLUMNS,
    TIMESTAMP_LAYOUTS,
    TimestampWriter,
    read_timestamps,
)
from engine.recording.verify import verify_recording
from engine.sources import framecode
from engine.utc import utc_now_iso
from tests.conftest import tool_or_skip

WIDTH, HEIGHT = 320, 240
AT = {column: position for position, column in enumerate(TIMESTAMP_COLUMNS)}  # a row's fields
MS = 1_000_000
FFPROBE_CODEC = {"h264": "h264", "mjpeg": "mjpeg", "ffv1": "ffv1"}


def stamped_image(frame_number: int, camera_index: int) -> np.ndarray:
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    synthetic_frame(image, frame_number)
    framecode.burn(image, frame_number, camera_index)
    return image


def encode(path: Path, codec: str, stamps: list[tuple[int, int]], fps: float = 30.0) -> list:
    images = [stamped_image(frame, camera) for frame, camera in stamps]
    encoder = VideoEncoder(path, codec, WIDTH, HEIGHT, fps)
    for image in images:
        encoder.write(image)
    assert encoder.close() == len(images)
    return images


def decode_bgr(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def ffprobe(path: Path) -> dict:
    command = [
        tool_or_skip("ffprobe"),
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames,codec_name,r_frame_rate",
        "-of",
        "json",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["streams"][0]


# --- encoder ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_encoded_file_has_every_frame_with_its_stamp(tmp_path, codec):
    path = tmp_path / f"cam.{codec}.mkv"
    stamps = [(1000 + k, 3) for k in range(40)]
    images = encode(path, codec, stamps)

    probe = ffprobe(path)
    assert probe == {
        "codec_name": FFPROBE_CODEC[codec],
        "r_frame_rate": "30/1",
        "nb_read_frames": "40",
    }
    decoded = decode_bgr(path)
    assert [framecode.read(image) for image in decoded] == stamps
    if codec == "ffv1":  # lossless: bit-exact BGR
        assert all(np.array_equal(a, b) for a, b in zip(decoded, images, strict=True))


@pytest.mark.parametrize(("fps", "rate"), [(29.97, "2997/100"), (30000 / 1001, "30000/1001")])
def test_non_integer_frame_rate(tmp_path, fps, rate):
    path = tmp_path / "cam.mkv"
    encode(path, "h264", [(k, 0) for k in range(10)], fps=fps)
    probe = ffprobe(path)
    assert probe["r_frame_rate"] == rate
    assert probe["nb_read_frames"] == "10"
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == Fraction(rate)


def test_encoder_reads_a_padded_shared_memory_view_without_keeping_it(tmp_path):
    """A ring slot is a view into shared memory; the encoder must not hold on to it."""
    memory = shared_memory.SharedMemory(create=True, size=HEIGHT * (WIDTH + 16) * 3)
    try:
        padded = np.ndarray((HEIGHT, WIDTH + 16, 3), np.uint8, buffer=memory.buf)
        view = padded[:, :WIDTH]  # rows are not adjacent: linesize > width * 3
        encoder = VideoEncoder(tmp_path / "cam.mkv", "ffv1", WIDTH, HEIGHT, 30.0)
        for k in range(5):
            view[:] = stamped_image(k, 1)
            encoder.write(view)
        encoder.close()
        del padded, view
    finally:
        memory.close()  # BufferError here would mean a frame still refers to the slot
        memory.unlink()
    assert [framecode.read(image) for image in decode_bgr(tmp_path / "cam.mkv")] == [
        (k, 1) for k in range(5)
    ]


def test_encoder_close_is_idempotent(tmp_path):
    encoder = VideoEncoder(tmp_path / "cam.mkv", "mjpeg", WIDTH, HEIGHT, 30.0)
    encoder.write(stamped_image(0, 0))
    assert encoder.close() == 1
    assert encoder.close() == 1
    assert encoder.frames_written == 1


def test_encoder_missing_folder(tmp_path):
    path = tmp_path / "missing" / "cam.mkv"
    with pytest.raises(RecordingError, match="No such file or directory") as error:
        VideoEncoder(path, "h264", WIDTH, HEIGHT, 30.0)
    assert str(path) in str(error.value)


def test_encoder_folder_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "afile" / "cam.mkv"
    with pytest.raises(RecordingError, match="Not a directory") as error:
        VideoEncoder(path, "h264", WIDTH, HEIGHT, 30.0)
    assert str(path) in str(error.value)


def test_encoder_unknown_codec_lists_valid_ones(tmp_path):
    with pytest.raises(RecordingError, match=r"'vp9'.*h264, mjpeg, ffv1"):
        VideoEncoder(tmp_path / "cam.mkv", "vp9", WIDTH, HEIGHT, 30.0)


def test_encoder_unknown_option_is_an_error(tmp_path):
    path = tmp_path / "cam.mkv"
    with pytest.raises(RecordingError, match=r"libx264 has no option.*cfr"):
        VideoEncoder(path, "h264", WIDTH, HEIGHT, 30.0, options={"cfr": "20"})
    assert not path.exists()


def test_encoder_rejects_a_wrong_image_size(tmp_path):
    encoder = VideoEncoder(tmp_path / "cam.mkv", "h264", WIDTH, HEIGHT, 30.0)
    with encoder, pytest.raises(ValueError, match="expected uint8"):
        encoder.write(np.zeros((HEIGHT, WIDTH + 2, 3), np.uint8))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_encoder_disk_full_names_the_file():
    encoder = VideoEncoder(Path("/dev/full"), "ffv1", WIDTH, HEIGHT, 30.0)
    with pytest.raises(RecordingError, match="/dev/full: No space left on device"):
        for k in range(100):
            encoder.write(stamped_image(k, 0))
    with pytest.raises(RecordingError, match="No space left on device"):
        encoder.close()
    encoder.close()  # a second close after a failure is a no-op


def test_encode_throughput_reports_frames_per_second():
    assert encode_throughput("mjpeg", WIDTH, HEIGHT, frames=10) > 0


# --- timestamps ------------------------------------------------------------------------


def test_timestamps_round_trip(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "timestamps" / "cam0.csv"  # the folder is created on demand
    utc = 1_795_320_675_123_456_789  # 2026-11-22T04:11:15.123456789Z
    with TimestampWriter(path) as writer:
        for k in range(3):
            base = 10_000 + 1000 * k
            writer.write(50 + k, base, base + 1, base + 2, base + 3, utc + k * 1_000_000_000)
    writer.close()
    assert len(synced) == 1

    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(TIMESTAMP_COLUMNS)
    assert lines[1] == "0,50,10000,10001,10002,10003,10001,0,-1,-1,2026-11-22T04:11:15.123456Z"
    columns = read_timestamps(path)
    assert list(columns) == list(TIMESTAMP_COLUMNS)
    assert columns["frame_index"].tolist() == [0, 1, 2]  # the rows' places in the video
    assert columns["frame"].tolist() == [50, 51, 52]  # the group's frame sets
    assert columns["frame"].dtype == np.int64
    assert columns["after_publish_ns"].tolist() == [10003, 11003, 12003]
    assert columns["utc"] == [
        "2026-11-22T04:11:15.123456Z",
        "2026-11-22T04:11:16.123456Z",
        "2026-11-22T04:11:17.123456Z",
    ]


def test_timestamps_header_only(tmp_path):
    path = tmp_path / "cam0.csv"
    TimestampWriter(path).close()
    columns = read_timestamps(path)
    assert len(columns["frame"]) == 0
    assert columns["utc"] == []


def test_timestamps_broken_file_names_it(tmp_path):
    path = tmp_path / "cam0.csv"
    with TimestampWriter(path) as writer:
        writer.write(0, 1, 2, 3, 4, 0)
    with path.open("a") as file:
        file.write("1,5,6\n")  # a row cut short by a crash
    with pytest.raises(RecordingError, match=str(path)):
        read_timestamps(path)
    path.write_text("frame,when\n")
    with pytest.raises(RecordingError, match="header"):
        read_timestamps(path)


def test_timestamps_record_the_capture_time_and_older_columns_keep_their_place(tmp_path):
    path = tmp_path / "cam0.csv"
    with TimestampWriter(path) as writer:
        writer.write(7, 100, 200, 300, 400, 0, capture_ns=150)  # the source's capture time
        writer.write(8, 500, 600, 700, 800, 0)  # the source cannot tell: after-grab
        writer.write(9, 900, 1000, 1100, 1200, 0, capture_ns=150, repeat=True)  # no new frame
        writer.write(10, 1300, 1400, 1500, 1600, 0, device_frame=41, device_ns=5_000)
    header = path.read_text().splitlines()[0].split(",")
    assert header[0] == "frame_index"
    assert header[1:6] == list(OLD_TIMESTAMP_COLUMNS[:5])
    assert header[6:] == ["capture_ns", "repeat", "device_frame", "device_ns", "utc"]
    columns = read_timestamps(path)
    assert columns["capture_ns"].tolist() == [150, 600, 150, 1400]
    assert columns["repeat"].tolist() == [0, 0, 1, 0]
    assert columns["device_frame"].tolist() == [-1, -1, -1, 41]  # -1: the camera has none
    assert columns["device_ns"].tolist() == [-1, -1, -1, 5_000]
    assert columns["utc"] == ["1970-01-01T00:00:00.000000Z"] * 4


def test_timestamps_of_older_recordings_still_read(tmp_path):
    path = tmp_path / "cam0.csv"
    path.write_text(",".join(OLD_TIMESTAMP_COLUMNS) + "\n"
                    "3,10,20,30,40,2026-11-22T04:11:15.123456Z\n")
    columns = read_timestamps(path)
    assert "capture_ns" not in columns and "frame_index" not in columns
    assert columns["after_grab_ns"].tolist() == [20]
    assert columns["utc"] == ["2026-11-22T04:11:15.123456Z"]


@pytest.mark.parametrize("layout", TIMESTAMP_LAYOUTS[1:])
def test_timestamps_of_every_earlier_layout_still_read(tmp_path, layout):
    """Every layout a recording was ever made in, down to the one before frame_index:
    the columns it has, in its order, and none it lacks."""
    values = {"frame": "835", "before_grab_ns": "10", "after_grab_ns": "20",
              "after_retrieve_ns": "30", "after_publish_ns": "40", "capture_ns": "15",
              "repeat": "1", "device_frame": "7", "device_ns": "99",
              "utc": "2026-11-22T04:11:15.123456Z"}
    path = tmp_path / "cam0.csv"
    path.write_text(",".join(layout) + "\n" + ",".join(values[c] for c in layout) + "\n")
    columns = read_timestamps(path)
    assert list(columns) == list(layout)
    assert {name: (column if name == "utc" else column.tolist())
            for name, column in columns.items()} == \
        {name: [values[name]] if name == "utc" else [int(values[name])] for name in layout}


def test_timestamps_writer_missing_recording_folder(tmp_path):
    path = tmp_path / "missing" / "timestamps" / "cam0.csv"
    with pytest.raises(RecordingError, match="No such file or directory"):
        TimestampWriter(path)


# --- manifest --------------------------------------------------------------------------


def test_manifest_round_trip_leaves_no_temporary(tmp_path):
    manifest = {"format": 1, "name": "take", "status": "recording", "started_utc": utc_now_iso()}
    write_manifest(tmp_path, manifest)
    manifest["status"] = "finalized"
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recording.json"]
    assert manifest["started_utc"].endswith("Z") and len(manifest["started_utc"]) == 27


def test_manifest_failed_rewrite_keeps_the_old_version(tmp_path):
    write_manifest(tmp_path, {"status": "recording"})
    with pytest.raises(TypeError):
        write_manifest(tmp_path, {"status": "finalized", "oops": object()})
    assert read_manifest(tmp_path) == {"status": "recording"}


def test_manifest_broken_or_missing_names_the_file(tmp_path):
    path = tmp_path / "recording.json"
    with pytest.raises(RecordingError, match=f"{path} is missing"):
        read_manifest(tmp_path)
    path.write_text('{"status": "recor')
    with pytest.raises(RecordingError, match=f"{path} is not valid JSON"):
        read_manifest(tmp_path)


# --- sync report -----------------------------------------------------------------------


def cam(frames: list[int], grabs_ms: list[float]) -> dict[str, np.ndarray]:
    return {
        "frame": np.array(frames, np.int64),
        "after_grab_ns": (np.array(grabs_ms) * 1e6).astype(np.int64),
    }


def test_spread_uses_frames_present_in_all_cameras():
    spread = compute_spread(
        {
            "a": cam([0, 1, 2, 3], [0.0, 10.0, 20.0, 30.0]),
            "b": cam([0, 1, 3], [1.0, 10.5, 33.0]),  # frame 2 missing
            "c": cam([3, 1, 0, 7], [31.0, 9.5, 0.5, 70.0]),  # any order; 7 only here
        }
    )
    # frame 0: 1.0 ms, frame 1: 1.0 ms, frame 3: 3.0 ms
    assert spread == {"frame_sets": 3, "p50_ms": 1.0, "p99_ms": 2.96, "max_ms": 3.0}


def test_spread_single_camera_and_empty():
    assert compute_spread({"a": cam([0, 1], [0.0, 33.0])}) == {
        "frame_sets": 2,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
        "max_ms": 0.0,
    }
    empty = {"frame_sets": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    assert compute_spread({}) == empty
    assert compute_spread({"a": cam([0], [0.0]), "b": cam([1], [0.0])}) == empty


def test_spread_uses_capture_times_when_every_camera_has_them():
    a = cam([0, 1], [0.0, 33.0]) | {"capture_ns": np.array([0, 33_000_000])}
    b = cam([0, 1], [0.0, 33.0]) | {"capture_ns": np.array([4_000_000, 35_000_000])}
    assert compute_spread({"a": a, "b": b})["max_ms"] == 4.0
    assert compute_spread({"a": a, "b": cam([0, 1], [0.0, 33.0])})["max_ms"] == 0.0  # old
    assert compute_spread({"a": a, "b": b}, "after_grab_ns")["max_ms"] == 0.0


def test_mean_offsets_are_taken_from_each_frame_sets_median():
    a = cam([0, 1], [0.0, 33.0])
    b = cam([0, 1], [1.0, 34.0])
    c = cam([0, 1], [4.0, 33.0])  # 3 ms late in set 0, on the median in set 1
    stamps = frame_set_stamps({"a": a, "b": b, "c": c}, "after_grab_ns")
    assert mean_offsets_ms(stamps) == [-0.5, 0.5, 1.5]
    assert mean_offsets_ms(frame_set_stamps({}, "after_grab_ns")) == []


# --- a whole recording and verify ------------------------------------------------------

FIRST_FRAME = 100
FRAMES = 12


def make_recording(
    folder: Path,
    frames: tuple[int, ...] = (FRAMES, FRAMES),
    stamp=lambda frame, camera: (frame, camera),
    codec: str = "h264",
    latency_ms: tuple[float, ...] = (0.0, 0.0),
    numbers: tuple[list[int], ...] | None = None,
    segments: list[list[int]] | None = None,
) -> dict:
    """A complete 2-camera recording written with the real writers; stamp() decides what is
    burned into each frame, so a test can plant a wrong one; latency_ms, how long before
    its grab each camera captured its frames (a camera with 1000 ms more latency shows
    moments a second older in every frame set). `numbers`: each camera's frame numbers
    (default: FIRST_FRAME on, contiguous); `segments`: the manifest's, if any."""
    folder.mkdir()
    cameras = []
    for index, count in enumerate(frames):
        camera_id = f"cam{index}"
        encoder = VideoEncoder(folder / f"{camera_id}.mkv", codec, WIDTH, HEIGHT, 30.0)
        own = numbers[index] if numbers else range(FIRST_FRAME, FIRST_FRAME + count)
        with TimestampWriter(folder / "timestamps" / f"{camera_id}.csv") as timestamps:
            for frame in own:
                encoder.write(stamped_image(*stamp(frame, index)))
                grab = frame * 33_333_333 + index * 250_000
                timestamps.write(
                    frame,
                    grab - 5_000_000,
                    grab,
                    grab + 1_000_000,
                    grab + 1_200_000,
                    1_795_320_675_000_000_000 + grab,
                    grab - round(latency_ms[index] * MS),
                )
        encoder.close()
        cameras.append(
            {
                "id": camera_id,
                "source": "synthetic://",
                "synthetic": True,
                "index": index,
                "file": f"{camera_id}.mkv",
                "timestamps": f"timestamps/{camera_id}.csv",
                "settings": {"width": WIDTH, "height": HEIGHT, "fps": 30.0},
                "frames": count,
                "dropped": 0,
            }
        )
    manifest = {
        "format": 1,
        "name": "take 1",
        "status": "finalized",
        "started_utc": utc_now_iso(),
        "stopped_utc": utc_now_iso(),
        "codec": codec,
        "fps": 30.0,
        "first_frame": FIRST_FRAME,
        "last_frame": segments[-1][1] if segments else FIRST_FRAME + min(frames),
        **({"segments": segments} if segments is not None else {}),
        "cameras": cameras,
        "sync": None,
        "errors": [],
    }
    manifest["sync"] = write_sync_report(folder, manifest)
    write_manifest(folder, manifest)
    return manifest


def problems_of(folder: Path) -> str:
    report = verify_recording(folder)
    assert not report.ok
    return "\n".join(report.problems)


def edit_row(path: Path, row: int, edit) -> None:
    """Apply edit(list of fields) to data row `row` of a timestamps file."""
    lines = path.read_text().splitlines()
    fields = lines[row + 1].split(",")
    edit(fields)
    lines[row + 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("codec", CODECS)
def test_valid_recording_verifies(tmp_path, codec):
    folder = tmp_path / "take"
    manifest = make_recording(folder, codec=codec)
    assert manifest["sync"] == {
        "frame_sets": FRAMES,
        "p50_ms": 0.25,
        "p99_ms": 0.25,
        "max_ms": 0.25,
        "tolerance_ms": 33.333,
        "over_tolerance": 0,
    }
    sync_file = json.loads((folder / "sync_report.json").read_text())
    assert sync_file["cameras"] == {"cam0": {"frames": FRAMES, "repeated": 0},
                                    "cam1": {"frames": FRAMES, "repeated": 0}}

    report = verify_recording(folder)
    assert report.problems == []
    assert report.ok
    assert report.cameras["cam1"]["frames_decoded"] == FRAMES
    assert report.cameras["cam1"]["stamps_checked"] == FRAMES
    assert "OK" in report.summary()
    assert f"cam1: 12 frames decoded ({codec} 320x240)" in report.summary()
    assert "sync (capture_ns): 12 frame sets, p50 0.25 ms, p99 0.25 ms, max 0.25 ms, " \
           "tolerance 33.333 ms (0 frame sets over)" in report.summary()


def test_verify_decodes_but_does_not_read_stamps_of_real_cameras(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder, stamp=lambda frame, camera: (0, 9))  # no valid stamps
    for camera in manifest["cameras"]:
        camera["synthetic"] = False
    write_manifest(folder, manifest)
    report = verify_recording(folder)
    assert report.ok, report.problems
    assert report.cameras["cam0"]["frames_decoded"] == FRAMES
    assert "stamps_checked" not in report.cameras["cam0"]


def free_running(manifest: dict, folder: Path) -> None:
    """Mark every camera of a made recording as a free-running synthetic one."""
    for camera in manifest["cameras"]:
        camera["settings"]["clock"] = "free"
    write_manifest(folder, manifest)


def test_verify_reads_a_free_running_cameras_own_frame_numbers(tmp_path):
    folder = tmp_path / "take"
    # Each camera counts on its own clock: cam1 is 40 ahead and skipped a frame at 105.
    manifest = make_recording(
        folder, stamp=lambda f, c: (f + 40 * c + (c and f >= 105), c))
    assert "frame stamp" in problems_of(folder)  # as gated cameras: frame k differs
    free_running(manifest, folder)
    report = verify_recording(folder)
    assert report.ok, report.problems
    assert report.cameras["cam1"]["stamps_checked"] == FRAMES
    assert report.cameras["cam0"]["source_frames_skipped"] == 0
    assert report.cameras["cam1"]["source_frames_skipped"] == 1
    assert "cam1: 12 frames decoded (h264 320x240), 12 timestamp rows, 12 frame stamps " \
           "checked, 1 source frames skipped" in report.summary()


def test_verify_a_free_running_camera_whose_numbers_go_back_or_name_another_camera(tmp_path):
    folder = tmp_path / "take"
    stamps = {(104, 0): (90, 0), (106, 1): (106, 0)}
    manifest = make_recording(folder, stamp=lambda f, c: stamps.get((f, c), (f, c)))
    free_running(manifest, folder)
    assert problems_of(folder) == (
        "cam0: video frame 4 of cam0.mkv carries source frame 90 after 103\n"
        "cam1: video frame 6 of cam1.mkv carries camera 0, expected camera 1"
    )


def test_verify_one_camera_a_frame_short(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder, frames=(FRAMES, FRAMES - 1))
    manifest["cameras"][1]["frames"] = FRAMES  # as if the writer had claimed all of them
    write_manifest(folder, manifest)
    problems = problems_of(folder)
    assert "decoded frame counts differ between cameras: cam0 12, cam1 11" in problems
    assert "cam1: decoded 11 frames, manifest says 12" in problems


def test_verify_duplicated_frame(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder, stamp=lambda f, c: (f - 1, c) if (f, c) == (105, 1) else (f, c))
    problems = problems_of(folder)
    assert problems == (
        "cam1: video frame 5 of cam1.mkv carries frame 104 camera 1, expected frame 105 camera 1"
    )


def test_verify_swapped_camera_index(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder)
    manifest["cameras"][0]["index"], manifest["cameras"][1]["index"] = 1, 0
    write_manifest(folder, manifest)
    problems = problems_of(folder)
    assert (
        "cam0: video frame 0 of cam0.mkv carries frame 100 camera 0, expected frame 100 "
        "camera 1" in problems
    )
    assert f"... and {2 * FRAMES - 10} more frame stamp problems" in problems  # capped per kind


def test_verify_missing_timestamps_row(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    path = folder / "timestamps" / "cam0.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4] + lines[5:]) + "\n")  # drop the row of frame 103
    problems = problems_of(folder)
    assert "cam0: timestamps/cam0.csv row 3: frame 104 follows 102" in problems
    assert "cam0: timestamps/cam0.csv has 11 rows for 12 decoded frames" in problems


PAUSED = [*range(FIRST_FRAME, FIRST_FRAME + 5), *range(FIRST_FRAME + 20, FIRST_FRAME + 27)]
PAUSED_SEGMENTS = [[FIRST_FRAME, FIRST_FRAME + 5], [FIRST_FRAME + 20, FIRST_FRAME + 27]]


def test_a_recording_with_a_writing_pause_verifies(tmp_path):
    """Frame numbers jump over a pause the manifest's segments show, the same in every
    camera: the recording verifies, and the sync report pairs frame sets by number."""
    folder = tmp_path / "take"
    manifest = make_recording(folder, numbers=(PAUSED, PAUSED), segments=PAUSED_SEGMENTS)
    assert manifest["sync"]["frame_sets"] == FRAMES
    report = verify_recording(folder)
    assert report.ok, report.summary()
    assert report.cameras["cam1"]["stamps_checked"] == FRAMES
    assert "2 segments (paused between them): [100, 105) [120, 127)" in report.summary()


def test_verify_fails_frame_numbers_that_do_not_follow_the_segments(tmp_path):
    """A jump no pause explains, a pause the rows do not show, and cameras whose rows
    name different frame sets are each named."""
    folder = tmp_path / "jump"
    skipped = [*PAUSED[:5], *range(FIRST_FRAME + 21, FIRST_FRAME + 28)]
    make_recording(folder, numbers=(PAUSED, skipped), segments=PAUSED_SEGMENTS)
    problems = problems_of(folder)
    assert "cam1: timestamps/cam1.csv row 5: frame 121 follows 104" in problems
    assert "cam1: timestamps row 5 is frame 121, cam0's is frame 120" in problems

    folder = tmp_path / "unshown"
    contiguous = list(range(FIRST_FRAME, FIRST_FRAME + FRAMES))
    make_recording(folder, numbers=(contiguous, contiguous), segments=PAUSED_SEGMENTS)
    problems = problems_of(folder)
    assert ("cam0: timestamps/cam0.csv row 5 is frame 105, where the manifest's segments "
            "name frame 120") in problems

    folder = tmp_path / "unlisted"
    manifest = make_recording(folder, numbers=(PAUSED, PAUSED))  # the manifest has none
    assert "cam0: timestamps/cam0.csv row 5: frame 120 follows 104" in problems_of(folder)
    manifest["segments"] = [[FIRST_FRAME, FIRST_FRAME + 5], [FIRST_FRAME + 3, None]]
    write_manifest(folder, manifest)
    assert "manifest segment #1 [103, None] does not follow the one before it" \
        in problems_of(folder)


def test_verify_checks_that_row_k_describes_video_frame_k(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder)
    path = folder / "timestamps" / "cam1.csv"
    assert read_timestamps(path)["frame_index"].tolist() == list(range(FRAMES))
    edit_row(path, 5, lambda fields: fields.__setitem__(AT["frame_index"], "6"))
    assert "cam1: timestamps/cam1.csv row 5 has frame_index 6, where it describes video " \
           "frame 5" in problems_of(folder)
    # A recording made before frame_index says nothing of it, and verifies.
    for camera in manifest["cameras"]:
        rewrite_columns(folder / camera["timestamps"], lambda fields: fields.pop(0))
    assert read_timestamps(path).keys() == set(TIMESTAMP_COLUMNS[1:])
    report = verify_recording(folder)
    assert report.ok, report.summary()


def test_verify_non_monotonic_stamps(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    path = folder / "timestamps" / "cam1.csv"
    edit_row(path, 6, lambda fields: fields.__setitem__(
        AT["after_grab_ns"], str(int(fields[AT["after_grab_ns"]]) - 40_000_000)))
    problems = problems_of(folder)
    assert "cam1: timestamps/cam1.csv row 6 (frame 106): after_grab_ns goes back" in problems
    assert (
        "cam1: timestamps/cam1.csv row 6 (frame 106): before_grab_ns after after_grab_ns"
        in problems
    )


def test_verify_truncated_video(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    path = folder / "cam1.mkv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = verify_recording(folder)
    assert not report.ok
    decoded = report.cameras["cam1"]["frames_decoded"]
    assert decoded < FRAMES
    problems = "\n".join(report.problems)
    assert (
        f"cam1: cam1.mkv is truncated or damaged: its header says {FRAMES} frames, "
        f"{decoded} decode" in problems
    )
    assert f"cam1: decoded {decoded} frames, manifest says {FRAMES}" in problems
    assert f"cam1: timestamps/cam1.csv has {FRAMES} rows for {decoded} decoded frames" in problems


def test_verify_missing_video(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    (folder / "cam0.mkv").unlink()
    assert problems_of(folder) == "cam0: video file cam0.mkv is missing"


def test_verify_missing_manifest(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    (folder / "recording.json").unlink()
    report = verify_recording(folder)
    assert not report.ok
    assert report.problems == [f"manifest {folder / 'recording.json'} is missing"]
    assert "recording.json is missing" in report.summary()


def test_verify_malformed_manifest_entries(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder)
    del manifest["cameras"][1]["file"]
    manifest["first_frame"] = None
    write_manifest(folder, manifest)
    problems = problems_of(folder)
    assert "manifest camera #1 has no file" in problems
    assert "manifest first_frame is None, not a frame number" in problems


def rewrite_columns(path: Path, edit) -> None:
    """Apply edit(list of fields) to the header and every row of a timestamps file."""
    lines = [line.split(",") for line in path.read_text().splitlines()]
    for fields in lines:
        edit(fields)
    path.write_text("\n".join(",".join(fields) for fields in lines) + "\n")


def to_old_layout(fields: list[str]) -> None:
    """A header or row of the current layout as a recording made before capture_ns (and
    frame_index) has it."""
    fields[:] = [fields[AT[column]] for column in OLD_TIMESTAMP_COLUMNS]


def test_sync_report_is_computed_from_capture_times(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder)
    report = json.loads((folder / SYNC_REPORT_NAME).read_text())
    assert report["stamp"] == "capture_ns"
    assert report["mean_offset_ms"] == {"cam0": -0.125, "cam1": 0.125}

    def captured_10_ms_before_the_grab(fields: list[str]) -> None:
        if fields[0] != "frame_index":
            fields[AT["capture_ns"]] = str(int(fields[AT["after_grab_ns"]]) - 10_000_000)

    rewrite_columns(folder / "timestamps" / "cam1.csv", captured_10_ms_before_the_grab)
    manifest["sync"] = write_sync_report(folder, manifest)
    write_manifest(folder, manifest)
    assert manifest["sync"]["p50_ms"] == manifest["sync"]["max_ms"] == 9.75
    report = json.loads((folder / SYNC_REPORT_NAME).read_text())
    assert report["mean_offset_ms"] == {"cam0": 4.875, "cam1": -4.875}
    assert verify_recording(folder).ok


def test_a_recording_made_before_capture_times_still_verifies(tmp_path):
    folder = tmp_path / "take"
    manifest = make_recording(folder)
    for camera in manifest["cameras"]:
        rewrite_columns(folder / camera["timestamps"], to_old_layout)
    header = (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0]
    assert header == ",".join(OLD_TIMESTAMP_COLUMNS)
    manifest["sync"] = write_sync_report(folder, manifest)
    write_manifest(folder, manifest)
    report = verify_recording(folder)
    assert report.ok, report.summary()
    assert manifest["sync"]["p50_ms"] == 0.25
    assert json.loads((folder / SYNC_REPORT_NAME).read_text())["stamp"] == "after_grab_ns"


def test_verify_flags_capture_times_that_go_back_or_come_after_the_frame(tmp_path):
    folder = tmp_path / "take"
    make_recording(folder)
    path = folder / "timestamps" / "cam0.csv"
    edit_row(path, 4, lambda fields: fields.__setitem__(
        AT["capture_ns"], str(int(fields[AT["capture_ns"]]) - 40_000_000)))
    edit_row(path, 8, lambda fields: fields.__setitem__(
        AT["capture_ns"], str(int(fields[AT["after_retrieve_ns"]]) + 1)))
    problems = problems_of(folder)
    assert "cam0: timestamps/cam0.csv row 4 (frame 104): capture_ns goes back" in problems
    assert "cam0: timestamps/cam0.csv row 8 (frame 108): capture_ns after after_retrieve_ns" \
        in problems


# --- sync tolerance ----------------------------------------------------------------------


def test_the_tolerance_is_the_rigs_else_one_frame_period_of_the_slowest_camera():
    cameras = [{"settings": {"fps": 30.0}}, {"settings": {"fps": 25.0}}, {"settings": {}}]
    assert sync_tolerance({"fps": 25.0, "cameras": cameras}) == SyncTolerance(
        40.0, "one frame period at 25 fps")
    assert sync_tolerance({"fps": 30.0, "cameras": []}) == SyncTolerance(
        1000 / 30, "one frame period at 30 fps")
    assert sync_tolerance({"fps": 30.0, "sync_tolerance_ms": 5.0}) == SyncTolerance(
        5.0, "the rig's sync_tolerance_ms")
    assert sync_tolerance({"fps": 30.0, "sync_tolerance_ms": 5.0}, 7.5) == SyncTolerance(
        7.5, "--sync-tolerance-ms")
    assert sync_tolerance({"fps": None, "cameras": "?"}) is None


def spread_of(outliers: int, sets: int = 200) -> dict:
    """sets frame sets 1 ms apart, `outliers` of them 500 ms apart, against 33.3 ms."""
    late = [500.0 if k < outliers else 1.0 for k in range(sets)]
    frames = list(range(sets))
    return compute_spread(
        {"a": cam(frames, [33.0 * k for k in frames]),
         "b": cam(frames, [33.0 * k + late[k] for k in frames])},
        tolerance_ms=1000 / 30)


@pytest.mark.parametrize(("outliers", "held"), [(0, True), (1, True), (2, True), (3, False)])
def test_sync_fails_when_more_than_one_percent_of_frame_sets_spread_further(outliers, held):
    """The rule is p99 within the tolerance: one outlier in 200 frame sets holds (max
    shows it), 3 (1.5 %) fail."""
    spread = spread_of(outliers)
    assert spread["over_tolerance"] == outliers
    assert spread["max_ms"] == (500.0 if outliers else 1.0)
    assert sync_held(spread) is held
    tolerance = SyncTolerance(1000 / 30, "one frame period at 30 fps")
    stamp: SpreadStamp = "after_grab_ns"
    assert (sync_failure(spread, tolerance, stamp) is None) is held
    if not held:
        assert sync_failure(spread, tolerance, stamp) == (
            "sync: 3 of 200 frame sets (1.5 %) spread more than 33.3 ms (the tolerance: one "
            "frame period at 30 fps), more than the 1 % allowed; p99 500.0 ms, max 500.0 ms "
            "(from after_grab_ns)")


OUT_OF_SYNC = (
    "sync: 12 of 12 frame sets (100.0 %) spread more than 33.3 ms (the tolerance: one frame "
    "period at 30 fps), more than the 1 % allowed; p99 1000.2 ms, max 1000.2 ms "
    "(from capture_ns)"
)


def make_out_of_sync_recording(folder: Path) -> dict:
    """A recording made the old way (frame sets gated by grab time): identical counts and
    frame numbers, but cam0 delivers every frame a second late, so cam1 captured each
    frame set 1000 ms after cam0."""
    return make_recording(folder, latency_ms=(1000.0, 0.0))


def test_verify_fails_a_recording_whose_cameras_captured_a_second_apart(tmp_path):
    folder = tmp_path / "take"
    manifest = make_out_of_sync_recording(folder)
    report = verify_recording(folder)
    assert not report.ok
    assert report.problems == [OUT_OF_SYNC]
    assert [info["frames_decoded"] for info in report.cameras.values()] == [FRAMES, FRAMES]
    assert "PROBLEMS FOUND" in report.summary() and OUT_OF_SYNC in report.summary()
    sync_file = json.loads((folder / SYNC_REPORT_NAME).read_text())
    assert sync_file["tolerance_ms"] == 33.333 and sync_file["over_tolerance"] == FRAMES
    assert manifest["sync"]["p99_ms"] == 1000.25

    assert verify_recording(folder, sync_tolerance_ms=2000.0).ok


def test_the_manifests_sync_tolerance_is_the_one_verify_and_the_report_use(tmp_path):
    folder = tmp_path / "take"
    manifest = make_out_of_sync_recording(folder)
    manifest["sync_tolerance_ms"] = 2000.0
    manifest["sync"] = write_sync_report(folder, manifest)
    write_manifest(folder, manifest)
    assert manifest["sync"]["tolerance_ms"] == 2000.0
    assert manifest["sync"]["over_tolerance"] == 0
    report = verify_recording(folder)
    assert report.ok, report.summary()
    assert "tolerance 2000.0 ms (0 frame sets over)" in report.summary()
    assert "tolerance: --sync-tolerance-ms" in "".join(
        verify_recording(folder, sync_tolerance_ms=10.0).problems)


def test_an_old_recording_without_capture_times_is_judged_by_its_grab_times(tmp_path):
    folder = tmp_path / "take"
    make_out_of_sync_recording(folder)
    for camera in ("cam0", "cam1"):
        rewrite_columns(folder / "timestamps" / f"{camera}.csv", to_old_layout)
    report = verify_recording(folder)
    assert report.ok, report.summary()  # it was grabbed in sync; that is all it can tell
    assert report.sync is not None and report.sync["stamp"] == "after_grab_ns"
