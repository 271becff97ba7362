"""Exports of a real take (2 free-running synthetic cameras and the synthetic IMU), each
opened the way its own tool opens it: NWB through pynwb, its validator and the NWB
Inspector; the FreeMoCap / SkellyCam folder and the anipose session through the names
and globs those tools use; every MP4 and the multitrack MKV through ffprobe and PyAV."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import av
import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.cli import main
from engine.export import FORMATS, ExportError, export_take
from engine.recording.manifest import read_manifest, write_manifest
from engine.recording.timestamps import read_timestamps
from engine.rig import demo_camera_settings
from engine.sensors.sidecar import read_sidecar
from engine.sources import framecode
from engine.specs import CameraSpec, SensorSpec
from tests.conftest import leak_guard, tool_or_skip
from tests.test_recording_files import make_recording
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

FPS = 30.0
# The names each tool parses, from its own source: FreeMoCap's extract_camera_id,
# SkellyCam's VIDEO_FILENAME_RE, anipose's documented cam_regex.
FREEMOCAP_CAMERA = re.compile(r"(?:camera|cam)[._\-]?(\d+)")
SKELLYCAM_VIDEO = re.compile(
    r"^(?P<recording_name>.+)\.id-(?P<camera_id>[^.]+)\.idx-(?P<camera_index>\d+)$")
ANIPOSE_CAMERA = "-cam([A-Z])"
# What the NWB Inspector may still ask for: metadata only the experimenter knows.
SESSION_METADATA_CHECKS = {"check_experimenter_exists", "check_experiment_description",
                           "check_institution", "check_keywords", "check_subject_exists"}


@pytest.fixture(scope="module")
def take(tmp_path_factory) -> Path:
    """One finished take: 2 free-running synthetic cameras (their own clocks, so capture
    times differ from grab times) and the synthetic IMU, about a second of H.264."""
    cameras = [CameraSpec(f"cam{i}", "synthetic", 256, 192, FPS, demo_camera_settings(i))
               for i in range(2)]
    with leak_guard(), CaptureGroup(cameras, sensors=[SensorSpec("imu", "imu:synthetic")]) \
            as group:
        recording = group.start_recording(tmp_path_factory.mktemp("takes"), "h264", "take1")
        wait_for(lambda: min(group.counts()) > recording.first_frame + 30, 15,
                 "frame sets recorded")
        group.stop_recording()
    manifest = read_manifest(recording.folder)
    assert manifest["status"] == "finalized"
    assert manifest["sensors"][0]["samples"] > 0
    return recording.folder


def frames_of(take: Path) -> int:
    return read_manifest(take)["cameras"][0]["frames"]


def utc_ns(texts: list[str] | str) -> np.ndarray:
    """The engine's UTC text as ns since the epoch."""
    items = [texts] if isinstance(texts, str) else texts
    return np.array([text.rstrip("Z") for text in items], "datetime64[ns]").astype(np.int64)


def ffprobe_frames(path: Path) -> list[int]:
    """Frames ffprobe decodes in each video stream (skipped without ffprobe, not in CI)."""
    command = [tool_or_skip("ffprobe"), "-v", "error", "-count_frames", "-select_streams",
               "v", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [int(line) for line in result.stdout.split()]


def ffprobe_rate(path: Path) -> str:
    command = [tool_or_skip("ffprobe"), "-v", "error", "-select_streams", "v:0",
               "-show_entries", "stream=avg_frame_rate", "-of", "csv=p=0", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of the file's first video stream, as PyAV decodes it (its own planes)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray() for frame in container.decode(video=0)]


def test_nwb_passes_the_validators_and_times_frames_by_their_capture(take, tmp_path):
    import pynwb
    from nwbinspector import inspect_nwbfile

    reported: list[float] = []
    written = export_take(take, "nwb", tmp_path / "out", reported.append)
    assert written == tmp_path / "out" / "take1.nwb"
    assert reported == sorted(reported) and reported[-1] == 1.0
    assert pynwb.validate(path=str(written)) == []
    advice = [(m.check_function_name, m.message) for m in inspect_nwbfile(nwbfile_path=written)]
    assert {name for name, _ in advice} <= SESSION_METADATA_CHECKS, advice

    manifest = read_manifest(take)
    with pynwb.NWBHDF5IO(str(written), "r") as io:
        nwbfile = io.read()
        assert nwbfile.timestamps_reference_time == nwbfile.session_start_time
        # The session starts with the take, or with its first capture where a free-running
        # camera's first frame is older (by less than two frame periods).
        started = round(nwbfile.session_start_time.timestamp() * 1e6) * 1000
        lead_s = (int(utc_ns(manifest["started_utc"])[0]) - started) / 1e9
        assert 0 <= lead_s < 2 / FPS
        first = min(nwbfile.acquisition[name].timestamps[0] for name in nwbfile.acquisition)
        assert 0 <= first < 1e-6 if lead_s else first >= 0
        for camera in manifest["cameras"]:
            series = nwbfile.acquisition[camera["id"]]
            assert series.format == "external"
            assert list(series.starting_frame) == [0]
            assert series.device is nwbfile.devices[camera["id"]]
            (external,) = series.external_file
            video = written.parent / external
            assert not Path(external).is_absolute()
            assert video.read_bytes() == (take / camera["file"]).read_bytes()
            rows = read_timestamps(take / camera["timestamps"])
            times = np.asarray(series.timestamps[:])
            assert len(times) == len(decoded(video)) == camera["frames"]
            # Intervals: the capture times' own, to the nanosecond.
            np.testing.assert_allclose(np.diff(times), np.diff(rows["capture_ns"]) / 1e9,
                                       rtol=0, atol=1e-9)
            # Origin: each row's UTC (read right after its grab) less the grab's lead on
            # the capture, from the session's start.
            expected = ((utc_ns(rows["utc"]) - started)
                        - (rows["after_grab_ns"] - rows["capture_ns"])) / 1e9
            assert np.median(np.abs(times - expected)) < 1e-4
        header, samples = read_sidecar(take / "sensors" / "imu.csv")
        imu = nwbfile.acquisition["imu"]
        assert imu.data.shape == (len(samples), len(header) - 4)
        np.testing.assert_array_equal(imu.data[:], [[float(v) for v in row[4:]]
                                                    for row in samples])
        arrived = np.array([int(row[1]) for row in samples])
        sample_times = np.asarray(imu.timestamps[:])
        np.testing.assert_allclose(np.diff(sample_times), np.diff(arrived) / 1e9,
                                   rtol=0, atol=1e-9)
        expected = (utc_ns([row[2] for row in samples]) - started) / 1e9
        assert np.median(np.abs(sample_times - expected)) < 1e-4


def test_nwb_without_pynwb_names_the_extra_to_install(take, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # as if it were not installed
    with pytest.raises(ExportError, match=re.escape("pip install 'recorder-workstation[nwb]'")
                       ) as raised:
        export_take(take, "nwb", tmp_path / "out")
    assert str(take) in str(raised.value) and "as nwb" in str(raised.value)
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.parametrize("to", ["freemocap", "skellycam"])
def test_freemocap_and_skellycam_folders_hold_synchronized_mp4s(take, tmp_path, to):
    manifest = read_manifest(take)
    frames, ids = frames_of(take), [camera["id"] for camera in manifest["cameras"]]
    folder = export_take(take, to, tmp_path)
    assert folder == tmp_path / "take1"
    # FreeMoCap's get_video_paths: synchronized_videos/*.mp4, sorted
    videos = sorted((folder / "synchronized_videos").glob("*.mp4"), key=lambda p: str(p).lower())
    assert len(videos) == len(ids)
    stems = [video.stem for video in videos]
    if to == "freemocap":
        assert [FREEMOCAP_CAMERA.search(stem.lower()).group(1) for stem in stems] == ["0", "1"]
    else:
        parsed = [SKELLYCAM_VIDEO.match(stem) for stem in stems]
        assert [(m["recording_name"], m["camera_id"], m["camera_index"]) for m in parsed] == [
            ("take1", camera, str(index)) for index, camera in enumerate(ids)]
    info = json.loads((folder / "take1_info.json").read_text())
    assert info["recording_name"] == "take1" and sorted(info["camera_configs"]) == ids
    assert {camera: f"{stem}.mp4" for camera, stem in zip(ids, stems, strict=True)} == (
        info["videos"])
    for camera, video in zip(manifest["cameras"], videos, strict=True):
        assert ffprobe_frames(video) == [frames]
        assert ffprobe_rate(video) == "30/1"  # the take's nominal rate
        with av.open(str(video)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        # remuxed: every frame decodes to exactly the recorded picture
        recorded = decoded(take / camera["file"])
        assert len(recorded) == frames
        assert all(np.array_equal(a, b) for a, b in zip(decoded(video), recorded, strict=True))
        stamps = (folder / "synchronized_videos" / "timestamps" / "camera_timestamps"
                  / f"{video.stem}.timestamps.csv").read_text().splitlines()
        header = stamps[0].split(",")
        at = header.index("timestamp.perf_counter_ns.ns")
        assert [int(row.split(",")[at]) for row in stamps[1:]] == (
            read_timestamps(take / camera["timestamps"])["capture_ns"].tolist())
    # FreeMoCap's recording_framerate: the median of from_previous.framerate.hz in
    # synchronized_videos/timestamps/*_timestamps.csv
    (sets_file,) = (folder / "synchronized_videos" / "timestamps").glob("*_timestamps.csv")
    lines = sets_file.read_text().splitlines()
    assert len(lines) == frames + 1
    column = lines[0].split(",").index("from_previous.framerate.hz")
    rates = [float(v) for v in (line.split(",")[column] for line in lines[1:]) if v]
    assert np.median(rates) == pytest.approx(FPS, rel=0.05)
    stats = json.loads((sets_file.parent / "take1_stats.json").read_text())
    assert stats["framerate_stats"]["median"] == pytest.approx(np.median(rates))


def test_anipose_session_is_named_as_anipose_reads_it(take, tmp_path):
    frames = frames_of(take)
    session = export_take(take, "anipose", tmp_path)
    assert session == tmp_path / "take1"
    config = tomllib.loads((tmp_path / "config.toml").read_text())
    assert config["triangulation"]["cam_regex"] == ANIPOSE_CAMERA
    assert config["nesting"] == 1
    # anipose's pose_videos: <session>/<pipeline.videos_raw>/*.<video_extension>
    videos = sorted((session / config["pipeline"]["videos_raw"]).glob(
        f"*.{config['video_extension']}"))
    stems = [video.stem for video in videos]
    # anipose's get_cam_name and get_video_name: one trial, a camera per letter
    assert [re.search(ANIPOSE_CAMERA, stem).group(1) for stem in stems] == ["A", "B"]
    assert {re.sub(ANIPOSE_CAMERA, "", stem).strip() for stem in stems} == {"take1"}
    letters = (session / "camera_letters.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in letters[1:]] == [["A", "cam0"], ["B", "cam1"]]
    for stem, camera in zip(stems, read_manifest(take)["cameras"], strict=True):
        assert (session / "timestamps" / f"{stem}.csv").read_bytes() == (
            take / camera["timestamps"]).read_bytes()
    assert [ffprobe_frames(video) for video in videos] == [[frames], [frames]]
    assert [len(decoded(video)) for video in videos] == [frames, frames]
    # A second session joins the project under the config.toml there; one that says
    # otherwise is the user's, and refused.
    shutil.copytree(take, tmp_path / "takes" / "take2", ignore=shutil.ignore_patterns("exports"))
    assert export_take(tmp_path / "takes" / "take2", "anipose", tmp_path) == tmp_path / "take2"
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('nesting = 1\n[triangulation]\ncam_regex = "_([A-Z])$"\n')
    with pytest.raises(ExportError, match="video_extension"):
        export_take(take, "anipose", other)


def test_mkv_holds_a_track_per_camera_and_is_never_overwritten(take):
    frames, ids = frames_of(take), [c["id"] for c in read_manifest(take)["cameras"]]
    written = export_take(take, "mkv")
    assert written == take / "exports" / "mkv" / "take1.mkv"  # the default: inside the take
    assert ffprobe_frames(written) == [frames] * len(ids)
    with av.open(str(written)) as container:
        assert [s.metadata.get("title") for s in container.streams.video] == ids
        counts = [0] * len(ids)
        for packet in container.demux(container.streams.video):
            counts[packet.stream.index] += packet.size > 0
    assert counts == [frames] * len(ids)
    with pytest.raises(ExportError, match="exists already"):
        export_take(take, "mkv")
    assert written.stat().st_size > 0


@pytest.mark.parametrize("codec", ["mjpeg", "ffv1"])
def test_mjpeg_and_ffv1_are_reencoded_to_h264_frame_for_frame(tmp_path, codec):
    make_recording(tmp_path / "take", codec=codec)
    manifest = read_manifest(tmp_path / "take")
    folder = export_take(tmp_path / "take", "freemocap", tmp_path / "out")
    for camera in manifest["cameras"]:
        video = folder / "synchronized_videos" / f"take.camera{camera['index']}.mp4"
        with av.open(str(video)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        assert ffprobe_frames(video) == [camera["frames"]] == [len(pictures)]
        numbers = read_timestamps(tmp_path / "take" / camera["timestamps"])["frame"]
        # frame k still shows the frame set its stamp names, for the camera it names
        assert [framecode.read(picture) for picture in pictures] == [
            (int(number), camera["index"]) for number in numbers]


@pytest.mark.parametrize("status", ["recording", "interrupted"])
def test_a_take_that_is_not_finished_is_refused(tmp_path, status):
    make_recording(tmp_path / "take")
    manifest = read_manifest(tmp_path / "take")
    write_manifest(tmp_path / "take", manifest | {"status": status})
    for to in FORMATS:
        with pytest.raises(ExportError, match=f"as {to}: the take is '{status}', not finished"):
            export_take(tmp_path / "take", to, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_export_that_fails_leaves_nothing_behind(tmp_path):
    make_recording(tmp_path / "take")
    video = tmp_path / "take" / "cam1.mkv"
    os.truncate(video, video.stat().st_size // 2)  # the second camera's file lost frames
    with pytest.raises(ExportError, match=r"as skellycam: .*cam1\.mkv holds \d+ frames"):
        export_take(tmp_path / "take", "skellycam", tmp_path / "out" / "skellycam")
    assert not (tmp_path / "out").exists()  # not even the folders made for it
    video.unlink()
    with pytest.raises(ExportError, match=r"as nwb: camera cam1: its video file .* is missing"):
        export_take(tmp_path / "take", "nwb")
    assert not (tmp_path / "take" / "exports").exists()  # the default place, not made


def test_cli_export_prints_what_it_wrote_or_why_not(take, tmp_path, capsys):
    assert main(["export", str(take), "--to", "mkv", "--output", str(tmp_path),
                 "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {"take": str(take), "format": "mkv", "output": str(tmp_path / "take1.mkv")}
    assert ffprobe_frames(tmp_path / "take1.mkv") == [frames_of(take)] * 2
    assert main(["export", str(take), "--to", "mkv", "--output", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: cannot export {take} as mkv: ")
    assert "exists already" in captured.err
