"""Making a take's files final in place, on real files: clean stops, crashes, damage."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from engine.recording.encoder import VideoEncoder
from engine.recording.errors import RecordingError
from engine.recording.finalize import (
    LOCK_NAME,
    MULTITRACK_NAME,
    finalize_recording,
    find_interrupted,
    recover,
)
from engine.recording.manifest import read_manifest, write_manifest
from engine.recording.segments import frame_numbers
from engine.recording.timestamps import (
    DEVICE_TIMESTAMP_COLUMNS,
    OLD_TIMESTAMP_COLUMNS,
    TIMESTAMP_COLUMNS,
    TimestampWriter,
    read_timestamps,
)
from engine.recording.verify import verify_recording
from engine.sources import framecode
from tests.conftest import tool_or_skip

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 256, 192, 30
FIRST = 1000  # group frame number of the first recorded frame
IDS = ("cam0", "cam1", "cam2")


# --- building takes as the writers leave them ------------------------------------------------


def stamped(frame_number: int, camera: int) -> np.ndarray:
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (frame_number * 5 + camera * 40) % 200 + 20
    framecode.burn(image, frame_number, camera)
    return image


def encode_file(path: Path, codec: str, frames: int, camera: int,
                numbers: list[int] | None = None) -> None:
    """A camera's file as its writer leaves it at a clean stop (frame k is FIRST + k, or
    numbers[k])."""
    numbers = numbers or [FIRST + k for k in range(frames)]
    with VideoEncoder(path, codec, WIDTH, HEIGHT, FPS, crash_safe=True) as encoder:
        for k in range(frames):
            encoder.write(stamped(numbers[k], camera))


def encode_killed(path: Path, codec: str, frames: int, camera: int) -> None:
    """A camera's file as a writer killed after `frames` frames leaves it: no trailer."""
    code = ("import os, sys; from pathlib import Path; from tests.test_finalize import *; "
            "encoder = VideoEncoder(Path(sys.argv[1]), sys.argv[2], WIDTH, HEIGHT, FPS, "
            "crash_safe=True); camera = int(sys.argv[4]); "
            "[encoder.write(stamped(FIRST + k, camera)) for k in range(int(sys.argv[3]))]; "
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path), codec, str(frames), str(camera)],
                   cwd=REPO, check=True)


def write_rows(path: Path, rows: int, camera: int, numbers: list[int] | None = None) -> None:
    """Row k names frame FIRST + k (or numbers[k]), grabbed at that frame's moment."""
    numbers = numbers or [FIRST + k for k in range(rows)]
    with TimestampWriter(path) as writer:
        for k in range(rows):
            at = numbers[k] - FIRST
            grab = 5_000_000_000 + at * 33_333_333 + camera * 200_000
            utc = 1_795_320_675_000_000_000 + at * 33_333_333
            writer.write(numbers[k], grab - 1000, grab, grab + 1000, grab + 2000, utc)


def make_recording(
    folder: Path,
    frames: list[int],
    *,
    codec: str = "h264",
    killed: tuple[int, ...] = (),
    rows: list[int] | None = None,
    segments: list[list[int | None]] | None = None,
) -> Path:
    """A take as the writers leave it: camera i's file holds frames[i] frames (written by
    a writer killed before it could close the file if i is in `killed`; none at all for
    0 frames) and rows[i] timestamp rows. With `segments` (a take with writing pauses, as
    its manifest says while it records), frame k is the segments' k-th frame number."""
    ids = IDS[: len(frames)]
    (folder / "timestamps").mkdir(parents=True)
    numbers = None
    if segments is not None:
        numbers = list(itertools.islice(frame_numbers(
            [(int(first or 0), last) for first, last in segments]), max(frames + (rows or []))))
    for camera, count in enumerate(frames):
        path = folder / f"{ids[camera]}.mkv"
        if camera in killed:
            encode_killed(path, codec, count, camera)
        elif count:
            encode_file(path, codec, count, camera, numbers)
        write_rows(folder / "timestamps" / f"{ids[camera]}.csv", (rows or frames)[camera], camera,
                   numbers)
    write_manifest(folder, {
        "format": 1,
        "name": folder.name,
        "status": "recording",
        "layout": "files",
        "started_utc": "2026-11-22T04:11:15.000000Z",
        "stopped_utc": None,
        "codec": codec,
        "fps": FPS,
        "first_frame": FIRST,
        "last_frame": None,
        **({"segments": segments} if segments is not None else {}),
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


def ffprobe_duration(path: Path) -> float:
    """The file's duration as ffprobe reads it from the container."""
    command = [tool_or_skip("ffprobe"), "-v", "error", "-show_entries", "format=duration",
               "-of", "csv=p=0", str(path)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def ffprobe_frames(path: Path) -> list[int]:
    """Frames ffprobe decodes in each video stream."""
    command = [tool_or_skip("ffprobe"), "-v", "error", "-count_frames", "-show_entries",
               "stream=nb_read_frames", "-of", "json", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return [int(stream["nb_read_frames"]) for stream in json.loads(result.stdout)["streams"]]


def assert_final(folder: Path, frames: int, status: str) -> dict:
    """Every final file holds the same `frames` frames; the folder verifies."""
    report = verify_recording(folder)
    assert report.ok, report.summary()
    manifest = read_manifest(folder)
    assert manifest["status"] == status
    assert manifest["layout"] == "files"
    assert manifest["last_frame"] == FIRST + frames
    assert [camera["frames"] for camera in manifest["cameras"]] == [frames] * len(report.cameras)
    assert manifest["sync"]["frame_sets"] == frames
    assert json.loads((folder / "sync_report.json").read_text())["frame_sets"] == frames
    for camera in manifest["cameras"]:  # row k is video frame k (files that say so)
        columns = read_timestamps(folder / camera["timestamps"])
        assert columns.get("frame_index", np.arange(frames)).tolist() == list(range(frames))
    assert not (folder / LOCK_NAME).exists()
    return manifest


def identities(folder: Path) -> dict[str, int]:
    """Each video file's inode: finalizing in place keeps it (a copy would not)."""
    return {path.name: path.stat().st_ino for path in folder.glob("*.mkv")}


# --- clean stops ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["h264", "mjpeg", "ffv1"])
def test_a_clean_take_is_final_where_it_was_written(tmp_path, codec):
    folder = make_recording(tmp_path / "rec", [75, 75, 75], codec=codec)
    written = identities(folder)
    fractions: list[float] = []

    summary = finalize_recording(folder, status="finalized", progress=fractions.append)

    manifest = assert_final(folder, 75, "finalized")
    assert identities(folder) == written  # no copy: the same files, sealed in place
    assert "salvage" not in manifest
    assert manifest["errors"] == []
    assert not (folder / MULTITRACK_NAME).exists()
    assert summary["folder"] == str(folder)
    assert summary["status"] == "finalized"
    assert summary["frames"] == 75
    assert summary["frames_dropped"] == dict.fromkeys(IDS, 0)
    assert summary["bytes"] == sum((folder / f"{i}.mkv").stat().st_size for i in IDS)
    assert fractions[-1] == 1.0
    for camera_id in IDS:  # last: skipped without ffprobe
        path = folder / f"{camera_id}.mkv"
        assert ffprobe_frames(path) == [75]
        assert ffprobe_duration(path) == pytest.approx(75 / FPS, abs=1e-3)


def to_layout(path: Path, columns: tuple[str, ...]) -> None:
    """Rewrite a timestamps file in an earlier layout: only `columns`, in their order."""
    lines = [line.split(",") for line in path.read_text().splitlines()]
    keep = [TIMESTAMP_COLUMNS.index(column) for column in columns]
    path.write_text("".join(",".join(fields[k] for k in keep) + "\n" for fields in lines))


def test_a_crashed_take_made_before_capture_times_recovers_in_its_own_layout(tmp_path):
    folder = make_recording(tmp_path / "rec", [40, 40])
    for camera_id in IDS[:2]:
        to_layout(folder / "timestamps" / f"{camera_id}.csv", OLD_TIMESTAMP_COLUMNS)
    old_header = (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0]
    assert old_header == "frame,before_grab_ns,after_grab_ns,after_retrieve_ns," \
                         "after_publish_ns,utc"

    finalize_recording(folder, status="recovered")

    manifest = assert_final(folder, 40, "recovered")
    assert manifest["stopped_utc"] == "2026-11-22T04:11:16.299999Z"  # the last row's
    assert (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0] == old_header
    assert json.loads((folder / "sync_report.json").read_text())["stamp"] == "after_grab_ns"
    assert manifest["sync"]["p50_ms"] == 0.2  # cam1 grabbed 0.2 ms after cam0


def test_a_crashed_take_made_before_frame_index_recovers_in_its_own_layout(tmp_path):
    """Files written before frame_index (frame first) still scan, cut and verify."""
    folder = make_recording(tmp_path / "rec", [40, 37], killed=(1,), rows=[40, 40])
    for camera_id in IDS[:2]:
        to_layout(folder / "timestamps" / f"{camera_id}.csv", DEVICE_TIMESTAMP_COLUMNS)
    header = (folder / "timestamps" / "cam0.csv").read_text().splitlines()[0]
    assert header.startswith("frame,before_grab_ns,") and "frame_index" not in header

    [summary] = recover(tmp_path)

    frames = summary["frames"]
    assert 35 <= frames <= 37  # cam1's killed writer lost what its encoder held
    assert_final(folder, frames, "recovered")
    for camera_id in IDS[:2]:
        path = folder / "timestamps" / f"{camera_id}.csv"
        assert path.read_text().splitlines()[0] == header
        assert read_timestamps(path)["frame"].tolist() == list(range(FIRST, FIRST + frames))


def test_a_row_that_names_another_video_frame_ends_the_rows(tmp_path):
    """Row k must say frame_index k: a last row that names another place is not the row
    of video frame k, whatever its frame number says, and the take is cut before it."""
    folder = make_recording(tmp_path / "rec", [40, 40], rows=[40, 40])
    path = folder / "timestamps" / "cam1.csv"
    lines = path.read_text().splitlines()
    assert lines[-1].startswith(f"39,{FIRST + 39},")
    lines[-1] = "40" + lines[-1][2:]
    path.write_text("\n".join(lines) + "\n")

    summary = finalize_recording(folder, status="recovered")

    assert summary["frames"] == 39
    assert_final(folder, 39, "recovered")


def test_finalizing_twice_is_harmless(tmp_path):
    folder = make_recording(tmp_path / "rec", [40, 40])
    first = finalize_recording(folder, status="finalized")
    written = {path.name: path.stat().st_mtime_ns for path in folder.glob("*.mkv")}

    again = finalize_recording(folder, status="recovered")

    assert {path.name: path.stat().st_mtime_ns for path in folder.glob("*.mkv")} == written
    assert again["status"] == "finalized"  # the manifest is not rewritten
    assert {key: again[key] for key in ("frames", "frames_dropped", "bytes")} == {
        key: first[key] for key in ("frames", "frames_dropped", "bytes")
    }
    assert verify_recording(folder).ok


def test_multitrack_file_has_one_track_per_camera(tmp_path):
    folder = make_recording(tmp_path / "rec", [45, 45, 45])

    summary = finalize_recording(folder, status="finalized", multitrack=True)

    assert_final(folder, 45, "finalized")
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


def test_cameras_are_cut_to_the_common_frame_count_in_place(tmp_path):
    folder = make_recording(tmp_path / "rec", [75, 75, 64])
    written = identities(folder)
    sizes = {path.name: path.stat().st_size for path in folder.glob("*.mkv")}

    summary = finalize_recording(folder, status="interrupted")

    manifest = assert_final(folder, 64, "interrupted")  # verify compares the stamps
    assert identities(folder) == written
    assert (folder / "cam0.mkv").stat().st_size < sizes["cam0.mkv"]  # cut, not copied
    dropped = {"cam0": 11, "cam1": 11, "cam2": 0}
    assert manifest["salvage"] == {"frames_kept": 64, "frames_dropped": dropped}
    assert summary["frames_dropped"] == dropped
    assert any("dropped" in line for line in manifest["errors"])
    for camera_id in IDS:
        assert len(read_timestamps(folder / "timestamps" / f"{camera_id}.csv")["frame"]) == 64
        path = folder / f"{camera_id}.mkv"
        assert ffprobe_frames(path) == [64]
        assert ffprobe_duration(path) == pytest.approx(64 / FPS, abs=1e-3)


def test_a_cut_file_is_indexed_so_a_player_seeks_in_it(tmp_path):
    folder = make_recording(tmp_path / "rec", [95, 70], killed=(1,))
    finalize_recording(folder, status="recovered")
    with av.open(str(folder / "cam0.mkv")) as container:  # cut from 95 to 70 frames
        stream = container.streams.video[0]
        container.seek(int(65 / FPS / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
    assert framecode.read(frame.to_ndarray(format="bgr24")) == (FIRST + 60, 0)  # its keyframe


def test_timestamp_rows_limit_the_frames(tmp_path):
    folder = make_recording(tmp_path / "rec", [60, 60], rows=[60, 50])
    csv = folder / "timestamps" / "cam1.csv"
    with open(csv, "a", encoding="ascii") as file:
        file.write("1050,6666666,66")  # a crash cut the next row in half

    summary = finalize_recording(folder, status="recovered")

    assert_final(folder, 50, "recovered")
    # cam1's last 10 pictures have no timestamps: they count as dropped too
    assert summary["frames_dropped"] == {"cam0": 10, "cam1": 10}
    assert csv.read_text().endswith("Z\n")


def test_a_hole_of_zeros_a_power_cut_left_in_the_timestamps_ends_their_rows(tmp_path):
    folder = make_recording(tmp_path / "rec", [60, 60])
    csv = folder / "timestamps" / "cam1.csv"
    data = bytearray(csv.read_bytes())
    start = data.index(b"\n30,1030,")  # rows 30 to ~40 never reached the disk
    data[start + 1: start + 1 + 1000] = bytes(1000)  # later rows reached it
    csv.write_bytes(bytes(data))

    summary = finalize_recording(folder, status="recovered")

    assert summary["frames"] == 30
    assert_final(folder, 30, "recovered")


# --- crashes, power cuts and full disks --------------------------------------------------------


def test_recover_the_files_of_killed_writers(tmp_path):
    folder = make_recording(tmp_path / "rec", [90, 90], killed=(0, 1), rows=[90, 90])
    frames_left = [ffprobe_frames(folder / f"{camera}.mkv")[0] for camera in IDS[:2]]

    [summary] = recover(tmp_path)

    frames = summary["frames"]
    # A killed writer loses what its encoder's threads still held: a frame or two.
    assert frames == min(frames_left) >= 87
    assert_final(folder, frames, "recovered")


def test_recover_a_file_cut_at_a_random_byte(tmp_path):
    folder = make_recording(tmp_path / "rec", [90, 90], killed=(1,))
    path = folder / "cam1.mkv"
    data = path.read_bytes()
    cut = random.Random(7).randrange(len(data) // 4, len(data) * 3 // 4)
    with av.open(str(path)) as container:  # the frames whose bytes lie wholly before the cut
        whole = sum(p.size > 0 and p.pos + p.size <= cut for p in container.demux(video=0))
    path.write_bytes(data[:cut])

    [summary] = recover(folder)

    assert summary["frames"] == whole
    manifest = assert_final(folder, whole, "recovered")
    assert manifest["salvage"]["frames_dropped"] == {"cam0": 90 - whole, "cam1": 90 - whole}


def test_a_power_cut_that_zeroed_the_files_tail_ends_it_there(tmp_path):
    folder = make_recording(tmp_path / "rec", [60, 60], killed=(0,))
    path = folder / "cam0.mkv"
    with av.open(str(path)) as container:
        start_of_frame_40 = [p.pos for p in container.demux(video=0) if p.size][40]
    with open(path, "r+b") as file:  # the data of the last half second never reached the disk
        file.seek(start_of_frame_40 - 40)
        file.write(bytes(len(path.read_bytes()) - file.tell()))

    [summary] = recover(folder)

    assert summary["frames"] < 40
    assert_final(folder, summary["frames"], "recovered")


def test_a_disk_too_full_for_the_index_still_leaves_readable_files(tmp_path, monkeypatch):
    """Sealing adds only the index; when even that does not fit, the file is cut and
    finished without it, and stays complete and readable."""
    import errno

    from engine.recording import mkv_seal

    def no_room(*args: object) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device")

    folder = make_recording(tmp_path / "rec", [50, 40], killed=(0,))
    layout = mkv_seal.scan(folder / "cam0.mkv", FPS)
    monkeypatch.setattr(mkv_seal, "_cues", no_room)

    assert mkv_seal.seal(folder / "cam0.mkv", layout, 40, FPS) is False

    assert ffprobe_frames(folder / "cam0.mkv") == [40]
    assert ffprobe_duration(folder / "cam0.mkv") == pytest.approx(40 / FPS, abs=1e-3)


# --- recovery at start-up ------------------------------------------------------------------


def test_recover_reports_hopeless_takes_without_raising(tmp_path):
    good = make_recording(tmp_path / "a_good", [40, 40])
    hopeless = make_recording(tmp_path / "b_hopeless", [20, 20], killed=(1,))
    (hopeless / "cam0.mkv").write_bytes(bytes(range(256)) * 40)
    (hopeless / "cam1.mkv").write_bytes(bytes(range(256)) * 40)
    empty = make_recording(tmp_path / "c_empty", [0, 0])
    header_only = make_recording(tmp_path / "d_header_only", [0, 0], killed=(0, 1))
    done = make_recording(tmp_path / "e_done", [10, 10])
    finalize_recording(done, status="finalized")
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
    assert_final(good, 40, "recovered")
    assert "nothing recoverable" in results[1]["error"]
    assert str(hopeless) in results[1]["error"]
    assert read_manifest(hopeless)["status"] == "recording"
    for folder, result in zip((empty, header_only), results[2:], strict=True):
        assert result["status"] == "interrupted"
        assert result["frames"] == 0
        manifest = read_manifest(folder)
        assert manifest["status"] == "interrupted"
        assert manifest["errors"] == ["nothing was recorded"]
        assert [camera["frames"] for camera in manifest["cameras"]] == [0, 0]
        assert not list(folder.glob("*.mkv"))
    assert find_interrupted(tmp_path) == [hopeless]


def test_files_stay_for_recovery_when_one_cannot_be_read(tmp_path):
    folder = make_recording(tmp_path / "rec", [45, 45])
    hidden = folder / "cam1.hidden"
    (folder / "cam1.mkv").rename(hidden)
    (folder / "cam1.mkv").mkdir()

    with pytest.raises(RecordingError, match=r"cam1\.mkv"):
        finalize_recording(folder, status="finalized")

    assert read_manifest(folder)["status"] == "recording"
    assert len(read_timestamps(folder / "timestamps" / "cam1.csv")["frame"]) == 45
    (folder / "cam1.mkv").rmdir()
    hidden.rename(folder / "cam1.mkv")
    finalize_recording(folder, status="finalized")  # and it can be finalized later
    assert_final(folder, 45, "finalized")


def test_a_chunked_take_of_an_earlier_version_is_named_not_mangled(tmp_path):
    folder = make_recording(tmp_path / "old", [10, 10])
    manifest = read_manifest(folder)
    write_manifest(folder, manifest | {"layout": "chunks"})
    [result] = recover(tmp_path)
    assert "earlier version" in result["error"]
    assert read_manifest(folder)["status"] == "recording"


def test_a_take_being_written_is_neither_interrupted_nor_recovered(tmp_path):
    """A take's writer holds its lock from its start until its files are final: recovery
    and find_interrupted leave it alone, its files and lock file untouched. The kernel
    drops the lock when the writer dies, so a crashed take is then recovered, and its
    lock file goes with it."""
    from engine.recording.finalize import is_locked, recording_lock

    folder = make_recording(tmp_path / "live", [40, 40])  # status "recording"
    files = {path: path.stat().st_size for path in folder.rglob("*") if path.is_file()}
    descriptor = recording_lock(folder)
    try:
        assert is_locked(folder)
        assert find_interrupted(tmp_path) == [] and recover(tmp_path) == []
        assert recover(folder) == []
        assert is_locked(folder) and read_manifest(folder)["status"] == "recording"
        assert {path: path.stat().st_size for path in files} == files
    finally:
        os.close(descriptor)  # the writer dies
    assert not is_locked(folder) and find_interrupted(tmp_path) == [folder]
    [result] = recover(tmp_path)
    assert result["status"] == "recovered"
    assert_final(folder, 40, "recovered")


def test_a_take_being_recovered_is_left_to_its_recovery(tmp_path):
    """Recovery holds the take's lock while it works (and removes its file only then): a
    second recovery meanwhile (another engine starting, `recorder-engine recover`) must
    see it as taken, not as a crashed take to finalize at the same time."""
    from engine.recording.finalize import is_locked

    folder = make_recording(tmp_path / "rec", [40, 40])
    write_manifest(folder, read_manifest(folder) | {"multitrack": True})  # reports progress
    (folder / LOCK_NAME).touch()  # what a killed writer leaves
    seen = []

    def meanwhile(fraction: float) -> None:
        if not seen:
            seen.append((read_manifest(folder)["status"], is_locked(folder),
                         find_interrupted(tmp_path), recover(tmp_path)))

    [result] = recover(tmp_path, progress=meanwhile)
    assert seen == [("recording", True, [], [])]
    assert result["status"] == "recovered"
    assert_final(folder, 40, "recovered")


def test_recover_removes_the_lock_file_a_crash_after_the_final_manifest_left(tmp_path, capsys):
    from engine.cli import main
    from engine.recording.finalize import LOCK_NAME, recording_lock, release_recording_lock

    folder = make_recording(tmp_path / "rec", [40, 40])
    finalize_recording(folder, status="finalized")
    (folder / LOCK_NAME).touch()

    assert main(["recover", str(tmp_path)]) == 0
    assert "removed the lock file a crash left behind" in capsys.readouterr().out
    assert not (folder / LOCK_NAME).exists()
    assert verify_recording(folder).ok
    # A lock released the normal way takes its file with it.
    live = tmp_path / "live"
    live.mkdir()
    release_recording_lock(live, recording_lock(live))
    assert not (live / LOCK_NAME).exists()


def test_recover_lists_a_crashed_recording_once_and_drops_its_dead_writers_lock(tmp_path):
    from engine.recording.finalize import LOCK_NAME

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


def test_a_cleanly_closed_file_is_counted_from_its_end(tmp_path):
    """Stopping counts each file from its last cluster (constant time); a file the
    writer never closed is not taken for one, and a frame larger than the first window
    read back is still found."""
    from engine.recording import mkv_seal

    noise = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), np.uint8)
    closed = tmp_path / "closed.mkv"
    with VideoEncoder(closed, "ffv1", 1280, 720, FPS, crash_safe=True) as encoder:
        for _ in range(3):
            encoder.write(noise)  # ~2.7 MB a frame: more than the first 1 MiB window
    assert mkv_seal.closed_frames(closed, FPS) == 3
    make_recording(tmp_path / "rec", [20, 20], killed=(1,))
    assert mkv_seal.closed_frames(tmp_path / "rec" / "cam0.mkv", FPS) == 20
    assert mkv_seal.closed_frames(tmp_path / "rec" / "cam1.mkv", FPS) is None
    summary = finalize_recording(tmp_path / "rec", status="recovered")  # sealed: counted so too
    for camera in ("cam0", "cam1"):
        assert mkv_seal.closed_frames(tmp_path / "rec" / f"{camera}.mkv", FPS) == summary["frames"]


# --- takes with writing pauses ---------------------------------------------------------------


def test_a_crashed_take_with_a_writing_pause_recovers_with_its_segments(tmp_path):
    """A take a crash ended after a writing pause: its rows jump over the pause (the same
    rows in every camera), which the manifest's open segments promise; recovery keeps the
    frames every camera has, and the final segments say where the pause is."""
    folder = make_recording(tmp_path / "rec", [30, 30, 26], rows=[30, 28, 30],
                            segments=[[FIRST, FIRST + 10], [FIRST + 25, None]])

    [summary] = recover(tmp_path)

    assert summary["frames"] == 26
    report = verify_recording(folder)
    assert report.ok, report.summary()
    manifest = read_manifest(folder)
    assert manifest["status"] == "recovered"
    assert manifest["segments"] == [[FIRST, FIRST + 10], [FIRST + 25, FIRST + 41]]
    assert manifest["last_frame"] == FIRST + 41
    assert [camera["frames"] for camera in manifest["cameras"]] == [26] * 3
    assert manifest["sync"]["frame_sets"] == 26
    expected = [*range(FIRST, FIRST + 10), *range(FIRST + 25, FIRST + 41)]
    for camera_id in IDS:
        assert read_timestamps(folder / "timestamps" / f"{camera_id}.csv")["frame"].tolist() \
            == expected
    assert "2 segments (paused between them): [1000, 1010) [1025, 1041)" in report.summary()


def test_rows_that_run_through_a_writing_pause_end_the_take_there(tmp_path):
    """A camera whose rows go on through a pause its manifest shows (frame numbers the
    segments do not name) cannot be one frame set with the others: the take keeps only
    the frames before the pause."""
    folder = make_recording(tmp_path / "rec", [30, 30],
                            segments=[[FIRST, FIRST + 10], [FIRST + 25, None]])
    path = folder / "timestamps" / "cam1.csv"
    path.unlink()
    write_rows(path, 30, 1)  # contiguous: no pause in this camera's rows

    [summary] = recover(tmp_path)

    assert summary["frames"] == 10
    manifest = read_manifest(folder)
    assert manifest["segments"] == [[FIRST, FIRST + 10]]
    assert manifest["last_frame"] == FIRST + 10
    assert verify_recording(folder).ok
