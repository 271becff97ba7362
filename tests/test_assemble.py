"""Assembling chunked recordings into final files, on real files: clean stops, crashes, damage."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from engine.recording.assemble import (
    MULTITRACK_NAME,
    assemble_recording,
    find_interrupted,
    recover,
)
from engine.recording.errors import RecordingError
from engine.recording.manifest import read_manifest, write_manifest
from engine.recording.timestamps import TimestampWriter, read_timestamps
from engine.recording.verify import verify_recording
from engine.sources import framecode
from tests.conftest import tool_or_skip

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 256, 192, 30
CHUNK = 30  # frames per chunk
FIRST = 1000  # group frame number of the first recorded frame
CRASH_SAFE = {"flush_packets": "1", "cluster_time_limit": "250"}
IDS = ("cam0", "cam1", "cam2")


# --- building chunked recordings ------------------------------------------------------------


def stamped(frame_number: int, camera: int) -> np.ndarray:
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (frame_number * 5 + camera * 40) % 200 + 20
    framecode.burn(image, frame_number, camera)
    return image


def open_chunk(path: Path, codec: str) -> tuple[av.container.OutputContainer, av.VideoStream]:
    container = av.open(str(path), "w", format="matroska", container_options=CRASH_SAFE)
    if codec == "h264":
        options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
        stream = container.add_stream("libx264", rate=FPS, options=options)
        stream.pix_fmt = "yuv420p"
    else:
        stream = container.add_stream("mjpeg", rate=FPS)
        stream.pix_fmt = "yuvj420p"
    stream.width, stream.height = WIDTH, HEIGHT
    container.start_encoding()
    return container, stream


def encode_chunk(
    path: Path, codec: str, frame_numbers: range, camera: int, *, pace: float = 0.0
) -> None:
    """One chunk: its frames have pts 0..n-1. With pace, a slow writer that prints its
    progress (for a test to kill it mid-chunk)."""
    container, stream = open_chunk(path, codec)
    for pts, number in enumerate(frame_numbers):
        frame = av.VideoFrame.from_ndarray(stamped(number, camera), format="bgr24")
        frame.pts = pts
        for packet in stream.encode(frame):
            container.mux(packet)
        if pace:
            print(pts + 1, flush=True)
            time.sleep(pace)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()


def write_rows(path: Path, rows: int, camera: int) -> None:
    with TimestampWriter(path) as writer:
        for k in range(rows):
            grab = 5_000_000_000 + k * 33_333_333 + camera * 200_000
            utc = 1_795_320_675_000_000_000 + k * 33_333_333
            writer.write(FIRST + k, grab - 1000, grab, grab + 1000, grab + 2000, utc)


def make_recording(
    folder: Path,
    frames: list[int],
    *,
    codec: str = "h264",
    last_part: bool = False,
    rows: list[int] | None = None,
) -> Path:
    """A recording as the writers leave it: camera i has frames[i] frames in chunks of
    CHUNK (the last one a .part if last_part) and rows[i] timestamp rows."""
    ids = IDS[: len(frames)]
    for camera, count in enumerate(frames):
        chunk_folder = folder / "chunks" / ids[camera]
        chunk_folder.mkdir(parents=True)
        chunks = range(0, count, CHUNK)
        for index, start in enumerate(chunks):
            part = last_part and index == len(chunks) - 1
            path = chunk_folder / f"{index:05d}.mkv{'.part' if part else ''}"
            numbers = range(FIRST + start, FIRST + min(count, start + CHUNK))
            encode_chunk(path, codec, numbers, camera)
        write_rows(folder / "timestamps" / f"{ids[camera]}.csv", (rows or frames)[camera], camera)
    write_manifest(folder, {
        "format": 1,
        "name": folder.name,
        "status": "recording",
        "layout": "chunks",
        "started_utc": "2026-11-22T04:11:15.000000Z",
        "stopped_utc": None,
        "codec": codec,
        "fps": FPS,
        "chunk_frames": CHUNK,
        "first_frame": FIRST,
        "last_frame": None,
        "cameras": [
            {"id": camera_id, "source": "synthetic", "synthetic": True, "index": index,
             "settings": {}, "file": f"{camera_id}.mkv",
             "timestamps": f"timestamps/{camera_id}.csv", "frames": None, "dropped": None}
            for index, camera_id in enumerate(ids)
        ],
        "sync": None,
        "errors": [],
    })
    return folder


def ffprobe_frames(path: Path) -> list[int]:
    """Frames ffprobe decodes in each video stream."""
    command = [tool_or_skip("ffprobe"), "-v", "error", "-count_frames", "-show_entries",
               "stream=nb_read_frames", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return [int(stream["nb_read_frames"]) for stream in json.loads(result.stdout)["streams"]]


def assert_assembled(folder: Path, frames: int, status: str) -> dict:
    """Every final file holds the same `frames` frames; the folder verifies."""
    report = verify_recording(folder)
    assert report.ok, report.summary()
    assert not (folder / "chunks").exists()
    manifest = read_manifest(folder)
    assert manifest["status"] == status
    assert manifest["layout"] == "files"
    assert manifest["last_frame"] == FIRST + frames
    assert [camera["frames"] for camera in manifest["cameras"]] == [frames] * len(report.cameras)
    assert manifest["sync"]["frame_sets"] == frames
    assert json.loads((folder / "sync_report.json").read_text())["frame_sets"] == frames
    return manifest


# --- clean stops ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_clean_recording_assembles_into_one_file_per_camera(tmp_path, codec):
    folder = make_recording(tmp_path / "rec", [75, 75, 75], codec=codec)
    fractions: list[float] = []

    summary = assemble_recording(folder, status="finalized", progress=fractions.append)

    manifest = assert_assembled(folder, 75, "finalized")
    assert "salvage" not in manifest
    assert manifest["errors"] == []
    assert not list(folder.glob("*.tmp"))
    assert not (folder / MULTITRACK_NAME).exists()
    assert summary["folder"] == str(folder)
    assert summary["status"] == "finalized"
    assert summary["frames"] == 75
    assert summary["frames_dropped"] == dict.fromkeys(IDS, 0)
    assert summary["bytes"] == sum((folder / f"{i}.mkv").stat().st_size for i in IDS)
    # About once per chunk of work (copy and verify), rising to exactly 1.
    assert len(fractions) >= 2 * 3 * 2
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    for camera_id in IDS:  # last: skipped without ffprobe
        assert ffprobe_frames(folder / f"{camera_id}.mkv") == [75]


def test_a_crashed_recording_made_before_capture_times_recovers_in_its_own_layout(tmp_path):
    folder = make_recording(tmp_path / "rec", [40, 40], last_part=True)
    for camera_id in IDS[:2]:
        path = folder / "timestamps" / f"{camera_id}.csv"
        lines = [line.split(",") for line in path.read_text().splitlines()]
        path.write_text("".join(",".join(f[:5] + f[7:]) + "\n" for f in lines))  # no capture_ns
    old_header = (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0]
    assert "capture_ns" not in old_header

    assemble_recording(folder, status="recovered")

    manifest = assert_assembled(folder, 40, "recovered")
    assert manifest["stopped_utc"] == "2026-11-22T04:11:16.299999Z"  # the last row's
    assert (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0] == old_header
    assert json.loads((folder / "sync_report.json").read_text())["stamp"] == "after_grab_ns"
    assert manifest["sync"]["p50_ms"] == 0.2  # cam1 grabbed 0.2 ms after cam0


def test_assembling_twice_is_harmless(tmp_path):
    folder = make_recording(tmp_path / "rec", [40, 40])
    first = assemble_recording(folder, status="finalized")
    written = {path.name: path.stat().st_mtime_ns for path in folder.glob("*.mkv")}
    (folder / "chunks" / "cam0").mkdir(parents=True)  # as if a crash came before the removal

    again = assemble_recording(folder, status="recovered")

    assert not (folder / "chunks").exists()
    assert {path.name: path.stat().st_mtime_ns for path in folder.glob("*.mkv")} == written
    assert again["status"] == "finalized"  # the manifest is not rewritten
    assert {key: again[key] for key in ("frames", "frames_dropped", "bytes")} == {
        key: first[key] for key in ("frames", "frames_dropped", "bytes")
    }
    assert verify_recording(folder).ok


def test_multitrack_file_has_one_track_per_camera(tmp_path):
    folder = make_recording(tmp_path / "rec", [45, 45, 45])

    summary = assemble_recording(folder, status="finalized", multitrack=True)

    assert_assembled(folder, 45, "finalized")
    path = folder / MULTITRACK_NAME
    with av.open(str(path)) as container:
        assert [s.metadata.get("title") for s in container.streams.video] == list(IDS)
    for index in range(3):
        with av.open(str(path)) as container:
            stamps = [framecode.read(frame.to_ndarray(format="bgr24"))
                      for frame in container.decode(video=index)]
        assert stamps == [(FIRST + k, index) for k in range(45)]
    assert summary["bytes"] == sum(p.stat().st_size for p in folder.glob("*.mkv"))
    assert ffprobe_frames(path) == [45, 45, 45]  # last: skipped without ffprobe


# --- frames cut to a common count ----------------------------------------------------------


def test_cameras_are_cut_to_the_common_frame_count(tmp_path):
    folder = make_recording(tmp_path / "rec", [75, 75, 64], last_part=True)

    summary = assemble_recording(folder, status="interrupted")

    manifest = assert_assembled(folder, 64, "interrupted")  # verify compares the stamps
    dropped = {"cam0": 11, "cam1": 11, "cam2": 0}
    assert manifest["salvage"] == {"frames_kept": 64, "frames_dropped": dropped}
    assert summary["frames_dropped"] == dropped
    assert any("dropped" in line for line in manifest["errors"])
    for camera_id in IDS:
        assert len(read_timestamps(folder / "timestamps" / f"{camera_id}.csv")["frame"]) == 64


def test_timestamp_rows_limit_the_frames(tmp_path):
    folder = make_recording(tmp_path / "rec", [60, 60], rows=[60, 50])
    csv = folder / "timestamps" / "cam1.csv"
    with open(csv, "a", encoding="ascii") as file:
        file.write("1050,6666666,66")  # a crash cut the next row in half

    summary = assemble_recording(folder, status="recovered")

    assert_assembled(folder, 50, "recovered")
    # cam1's last 10 pictures have no timestamps: they count as dropped too
    assert summary["frames_dropped"] == {"cam0": 10, "cam1": 10}
    assert csv.read_text().endswith("Z\n")


def test_frames_stop_before_a_missing_chunk(tmp_path):
    folder = make_recording(tmp_path / "rec", [90, 90])
    (folder / "chunks" / "cam1" / "00001.mkv").unlink()

    summary = assemble_recording(folder, status="recovered")

    assert_assembled(folder, CHUNK, "recovered")
    assert summary["frames_dropped"] == {"cam0": 60, "cam1": 60}  # rows without pictures


# --- crashes --------------------------------------------------------------------------------


def test_recover_a_part_chunk_of_a_killed_writer(tmp_path):
    folder = make_recording(tmp_path / "rec", [90, 90], rows=[90, 90])
    part = folder / "chunks" / "cam0" / "00002.mkv"
    part.unlink()
    part = part.with_name("00002.mkv.part")
    code = ("import sys; from pathlib import Path; from tests.test_assemble import encode_chunk; "
            "encode_chunk(Path(sys.argv[1]), 'h264', range(1060, 1090), 0, pace=0.02)")
    writer = subprocess.Popen([sys.executable, "-c", code, str(part)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        written = 0
        while written < 20:
            written = int(writer.stdout.readline())
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    write_rows(folder / "timestamps" / "cam0.csv", 60 + written, 0)

    [summary] = recover(tmp_path)

    frames = summary["frames"]
    # The muxer writes a cluster every 250 ms of video (8 frames): at most one is lost.
    assert 60 + written - 9 <= frames <= 60 + written
    assert_assembled(folder, frames, "recovered")
    assert summary["frames_dropped"] == {"cam0": 60 + written - frames, "cam1": 90 - frames}


def test_recover_a_part_chunk_cut_at_a_random_byte(tmp_path):
    folder = make_recording(tmp_path / "rec", [90, 90], last_part=True)
    part = folder / "chunks" / "cam1" / "00002.mkv.part"
    data = part.read_bytes()
    cut = random.Random(7).randrange(len(data) // 4, len(data) * 3 // 4)
    with av.open(str(part)) as container:  # the frames whose bytes lie wholly before the cut
        whole = sum(p.size > 0 and p.pos + p.size <= cut for p in container.demux(video=0))
    part.write_bytes(data[:cut])

    [summary] = recover(folder)

    frames = summary["frames"]
    assert frames == 60 + whole
    manifest = assert_assembled(folder, frames, "recovered")
    assert manifest["salvage"]["frames_dropped"] == {"cam0": 90 - frames, "cam1": 90 - frames}


# --- recovery at start-up ------------------------------------------------------------------


def test_recover_reports_hopeless_recordings_without_raising(tmp_path):
    good = make_recording(tmp_path / "a_good", [40, 40])
    hopeless = make_recording(tmp_path / "b_hopeless", [20, 20], last_part=True)
    (hopeless / "chunks" / "cam0" / "00000.mkv.part").write_bytes(bytes(range(256)) * 40)
    empty = make_recording(tmp_path / "c_empty", [0, 0])
    header_only = make_recording(tmp_path / "d_header_only", [0, 0])
    for camera_id in ("cam0", "cam1"):
        container, _ = open_chunk(header_only / "chunks" / camera_id / "00000.mkv.part", "h264")
        container.close()
    done = make_recording(tmp_path / "e_done", [10, 10])
    assemble_recording(done, status="finalized")
    (tmp_path / "not_a_recording").mkdir()

    assert find_interrupted(tmp_path) == [good, hopeless, empty, header_only]
    assert find_interrupted(good) == [good]
    assert find_interrupted(done) == []
    assert find_interrupted(tmp_path / "missing") == []

    results = recover(tmp_path)

    assert [result["folder"] for result in results] == [
        str(good), str(hopeless), str(empty), str(header_only)
    ]
    assert results[0]["status"] == "recovered"
    assert_assembled(good, 40, "recovered")
    assert "nothing recoverable" in results[1]["error"]
    assert str(hopeless) in results[1]["error"]
    assert read_manifest(hopeless)["status"] == "recording"
    assert (hopeless / "chunks").is_dir()
    for folder, result in zip((empty, header_only), results[2:], strict=True):
        assert result["status"] == "interrupted"
        assert result["frames"] == 0
        manifest = read_manifest(folder)
        assert manifest["status"] == "interrupted"
        assert manifest["errors"] == ["nothing was recorded"]
        assert [camera["frames"] for camera in manifest["cameras"]] == [0, 0]
        assert not list(folder.glob("*.mkv"))
        assert not (folder / "chunks").exists()
    assert find_interrupted(tmp_path) == [hopeless]


def test_chunks_stay_when_a_final_file_cannot_be_written(tmp_path):
    folder = make_recording(tmp_path / "rec", [45, 45])
    (folder / "cam1.mkv.tmp").mkdir()

    with pytest.raises(RecordingError, match=r"cam1\.mkv"):
        assemble_recording(folder, status="finalized")

    assert len(list((folder / "chunks").rglob("*.mkv"))) == 4
    assert read_manifest(folder)["status"] == "recording"
    assert len(read_timestamps(folder / "timestamps" / "cam1.csv")["frame"]) == 45
    (folder / "cam1.mkv.tmp").rmdir()
    assemble_recording(folder, status="finalized")  # and it can be assembled later
    assert_assembled(folder, 45, "finalized")


def test_recover_skips_a_recording_that_is_still_being_written(tmp_path):
    """A recording's writer holds its lock; recovery must not pull chunks from under it.
    The kernel drops the lock when the writer dies, so a crashed one is recovered."""
    from engine.recording.assemble import is_locked, recording_lock

    folder = tmp_path / "live"
    folder.mkdir()
    descriptor = recording_lock(folder)
    try:
        assert is_locked(folder)
    finally:
        os.close(descriptor)
    assert not is_locked(folder)


def test_recover_removes_what_a_crash_after_the_final_manifest_left(tmp_path, capsys):
    """A crash between the final manifest and the clean-up used to leave the chunks (and
    the lock file) forever: `recover` said "nothing to recover"."""
    from engine.cli import main
    from engine.recording.assemble import LOCK_NAME, recording_lock, release_recording_lock

    folder = make_recording(tmp_path / "rec", [40, 40])
    assemble_recording(folder, status="finalized")
    leftover = folder / "chunks" / "cam0"
    leftover.mkdir(parents=True)
    (leftover / "00000.mkv").write_bytes(b"x" * 1000)
    (folder / LOCK_NAME).touch()

    assert main(["recover", str(tmp_path)]) == 0
    assert "removed the chunks and lock file a crash left behind" in capsys.readouterr().out
    assert not (folder / "chunks").exists() and not (folder / LOCK_NAME).exists()
    assert verify_recording(folder).ok
    # A lock released the normal way takes its file with it.
    live = tmp_path / "live"
    live.mkdir()
    release_recording_lock(live, recording_lock(live))
    assert not (live / LOCK_NAME).exists()


def test_recover_lists_a_crashed_recording_once_and_drops_its_dead_writers_lock(tmp_path):
    from engine.recording.assemble import LOCK_NAME, recover

    folder = make_recording(tmp_path / "rec", [40, 40])
    (folder / LOCK_NAME).touch()  # what a killed writer leaves
    results = recover(tmp_path)
    assert [(r["folder"], r["status"]) for r in results] == [(str(folder), "recovered")]
    assert not (folder / LOCK_NAME).exists() and recover(tmp_path) == []


def test_recover_names_each_cameras_cut_frames(tmp_path, capsys):
    from engine.cli import main

    make_recording(tmp_path / "rec", [40, 37])
    assert main(["recover", str(tmp_path)]) == 0
    assert "frames cut to keep counts identical: cam0 3, cam1 0" in capsys.readouterr().out
