"""Same count is not same moment: real servers serve clock-stamped frames, the engine
records them, and decoding every recorded frame proves which moment it shows.

Network cameras are drained continuously (engine/sources/drain.py), so a camera that
opened late or reads a slower stream never records a backlog: frame k of every file
shows the same moment.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from engine.recording.manifest import read_manifest
from engine.recording.stamp_band import top_rows
from engine.recording.stamp_sync import UNREAD, StampSync, measure_stamp_sync
from engine.recording.sync_report import SYNC_REPORT_NAME, frame_set_stamps
from engine.recording.timestamps import read_timestamps
from engine.sources import clockstamp, framecode
from tests.conftest import leak_guard
from tests.stamped_servers import ROOT, StampedServers
from tests.waiting import wait_for

RECORD_SECONDS = 20  # the figure: 20 s of two RTSP cameras on one stream
MS = 1_000_000


@pytest.fixture
def servers() -> Iterator[StampedServers]:
    started = StampedServers()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("codec", ["libx264", "mjpeg"])
def test_the_clock_stamp_survives_compression_beside_the_frame_code(codec):
    now = time.monotonic_ns()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height = 640, 480
        stream.pix_fmt = "yuv420p" if codec == "libx264" else "yuvj420p"
        noise = np.random.default_rng(1).integers(0, 256, (480, 640, 3), np.uint8)
        for n in range(10):
            image = noise.copy()
            framecode.burn(image, n, 3)
            clockstamp.burn(image, now + n * 33_333_333, 2**32 - 5 + n)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        bands = [top_rows(frame, clockstamp.band_height(640)) for frame in container.decode()]
    assert [clockstamp.read(band) for band in bands] == [
        clockstamp.ClockStamp(now + n * 33_333_333, (2**32 - 5 + n) % 2**32) for n in range(10)
    ]
    assert [framecode.read(band) for band in bands] == [(n, 3) for n in range(10)]
    assert clockstamp.read(np.zeros((480, 640), np.uint8)) is None
    assert clockstamp.read(np.full((480, 640), 255, np.uint8)) is None


def test_stamp_sync_compares_the_moments_shown_per_frame_set():
    sync = StampSync(
        cameras=("a", "b"),
        served_ns=np.array([[0, 33 * MS, 66 * MS, 100 * MS], [0, 66 * MS, 66 * MS, UNREAD]]),
        counters=np.array([[0, 1, 2, 3], [0, 2, 2, UNREAD]]),
        grabbed_ns=np.array([[10, 43, 76, 110], [40, 106, 106, 140]]) * MS,
    )
    assert sync.frame_sets == 4 and sync.unreadable == 1
    assert list(sync.spread_ns) == [0, 33 * MS, 0]
    assert sync.spread_ms(100) == 33 and sync.within(32) == pytest.approx(2 / 3)
    assert sync.same_frame == pytest.approx(2 / 3)
    assert sync.latency_ms() == {"a": 10, "b": 40}
    assert "1 unreadable" in sync.summary()


def read_stream(url: str, frames: int) -> list[tuple[clockstamp.ClockStamp | None, int]]:
    """A bare PyAV reader: each decoded frame's stamp and the moment it was decoded."""
    seen = []
    with av.open(url, timeout=10) as container:
        stream = container.streams.video[0]
        rows = clockstamp.band_height(stream.codec_context.width)
        for frame in container.decode(stream):
            seen.append((clockstamp.read(top_rows(frame, rows)), time.monotonic_ns()))
            if len(seen) == frames:
                break
    return seen


@pytest.mark.parametrize("kind", ["rtsp", "mjpeg"])
def test_served_frames_carry_monotonic_stamps_of_the_moment_they_were_made(servers, kind):
    fps = 30 if kind == "rtsp" else 25
    url = servers.rtsp(fps=fps) if kind == "rtsp" else servers.mjpeg(fps=fps)
    seen = read_stream(url, 3 * fps)
    stamps = [stamp for stamp, _ in seen]
    assert None not in stamps
    counters = [s.counter for s in stamps if s]
    served = [s.monotonic_ns for s in stamps if s]
    assert counters == sorted(set(counters)) and served == sorted(set(served))
    # Frame to frame, one period apart (the source loses none while read promptly).
    assert np.median(np.diff(served)) == pytest.approx(1e9 / fps, rel=0.1)
    # Read promptly, the last second's frames are fresh: made a few frame periods ago.
    ages_ms = [(read - s.monotonic_ns) / 1e6 for s, read in seen[-fps:] if s]
    assert 0 < np.median(ages_ms) < 250, ages_ms


def test_every_client_of_the_rtsp_server_receives_the_very_same_frames(servers):
    url = servers.rtsp(fps=30)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: read_stream(url, 90), range(2))
    served = [{s.counter: s.monotonic_ns for s, _ in seen if s} for seen in (first, second)]
    common = served[0].keys() & served[1].keys()  # one may start a keyframe interval later
    assert len(common) >= 30, (sorted(served[0]), sorted(served[1]))
    assert all(served[0][counter] == served[1][counter] for counter in common)


@dataclass
class Recorded:
    folder: Path
    manifest: dict[str, Any]
    sync: StampSync


def record(tmp_path: Path, urls: list[str], fps: int, servers: StampedServers) -> Recorded:
    cameras = [arg for url in urls for arg in ("--camera", url)]
    result = subprocess.run(
        [sys.executable, "-m", "engine", "record", *cameras, "--size", "640x480", "--fps",
         str(fps), "--codec", "mjpeg", "--seconds", str(RECORD_SECONDS),
         "--output", str(tmp_path), "--name", "stamped"],
        capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr + servers.log()
    folder = tmp_path / "stamped"
    sync = measure_stamp_sync(folder)
    print(f"\n{result.stdout}\n{sync.summary()}")
    return Recorded(folder, read_manifest(folder), sync)


@pytest.fixture(scope="module")
def two_rtsp(tmp_path_factory) -> Recorded:
    """Two cameras on one stamped RTSP stream, recorded once for the module's tests. The
    second starts playing 1 s after the first, for certain: when both open together,
    which one gets the first keyframe (and so which is a keyframe interval behind) is a
    race that today's engine loses about 5 times in 6."""
    with leak_guard():
        servers = StampedServers()
        try:
            url = servers.rtsp(fps=30, late_s=1.0)
            return record(tmp_path_factory.mktemp("two_rtsp"), [url, url], 30, servers)
        finally:
            servers.stop()


# The tests of this recording (27 s to make) run in .ci/run's slow step; the default suite
# proves an RTSP and an MJPEG camera show one moment in test_stream_copy.py.
mixed_recording = pytest.mark.slow


@pytest.fixture(scope="module")
def two_rtsp_one_mjpeg(tmp_path_factory) -> Recorded:
    """Two cameras on one stamped RTSP stream (30 fps) and one MJPEG/HTTP camera (25 fps)."""
    with leak_guard():
        servers = StampedServers()
        try:
            rtsp, mjpeg = servers.rtsp(fps=30), servers.mjpeg(fps=25)
            return record(tmp_path_factory.mktemp("mixed"), [rtsp, rtsp, mjpeg], 25, servers)
        finally:
            servers.stop()


def assert_counts_hold(recorded: Recorded) -> None:
    """What the gate guarantees today: identical counts, and every frame stamped."""
    frames = [camera["frames"] for camera in recorded.manifest["cameras"]]
    assert len(set(frames)) == 1 and frames[0] >= RECORD_SECONDS * 20, frames
    assert recorded.sync.frame_sets == frames[0]
    assert recorded.sync.unreadable <= recorded.sync.frame_sets // 100, recorded.sync.summary()


def test_two_rtsp_cameras_on_one_stream_record_identical_counts(two_rtsp):
    assert_counts_hold(two_rtsp)


def test_two_rtsp_cameras_on_one_stream_record_the_same_moment(two_rtsp):
    """The second camera opens 1 s after the first: still no frame set beyond the
    tolerance (one frame period), and nearly all show the very same source frame."""
    sync = two_rtsp.sync
    assert sync.spread_ms(100) <= 1000 / 30, sync.summary()
    assert sync.same_frame >= 0.90, sync.summary()


def test_rtsp_cameras_record_their_rtp_times_on_the_local_clock_as_capture_time(two_rtsp):
    """Capture time = the frame's RTP time mapped by the server's RTCP sender reports (its
    wall clock is ours): within a few ms after the server made the frame (its encoder and
    network delay taken out), before the camera retrieved it, and steady (no network or
    decoder jitter)."""
    cameras = two_rtsp.manifest["cameras"]
    assert [camera["capture_clock"] for camera in cameras] == ["rtcp", "rtcp"]
    sync = two_rtsp.sync
    for row, camera in enumerate(cameras):
        stamps = read_timestamps(two_rtsp.folder / camera["timestamps"])
        read = sync.counters[row] != UNREAD
        new = stamps["repeat"][read] == 0
        delay_ms = (stamps["capture_ns"][read] - sync.served_ns[row, read])[new] / 1e6
        assert (delay_ms >= 0).all()  # made before it was captured
        assert np.median(delay_ms) < 5, delay_ms  # the fastest frame took ~40 ms to come
        assert np.percentile(delay_ms, 99) - np.percentile(delay_ms, 1) < 10, delay_ms
        assert (stamps["capture_ns"] <= stamps["after_retrieve_ns"]).all()
    report = json.loads((two_rtsp.folder / "sync_report.json").read_text())
    assert report["stamp"] == "capture_ns"


@mixed_recording
def test_rtsp_and_mjpeg_cameras_record_identical_counts(two_rtsp_one_mjpeg):
    assert_counts_hold(two_rtsp_one_mjpeg)


@mixed_recording
def test_rtsp_and_mjpeg_cameras_record_the_same_moment(two_rtsp_one_mjpeg):
    sync = two_rtsp_one_mjpeg.sync
    assert sync.within(100) >= 0.99, sync.summary()


@mixed_recording
def test_a_recording_runs_at_the_group_rate_and_its_files_say_so(two_rtsp_one_mjpeg):
    """The MJPEG stream declares no rate (FFmpeg would say 25 for any); the group runs at
    its slowest camera, 25 fps, and every file is tagged with that rate."""
    assert two_rtsp_one_mjpeg.manifest["fps"] == 25.0
    for camera in two_rtsp_one_mjpeg.manifest["cameras"]:
        with av.open(str(two_rtsp_one_mjpeg.folder / camera["file"])) as container:
            stream = container.streams.video[0]
            assert float(stream.guessed_rate or stream.average_rate or 0) == 25.0


def test_no_frame_set_after_a_freeze_shows_an_older_moment(servers, tmp_path):
    """Frames that arrive while the cameras are held (Freeze preview) are never replayed
    after it: the first frame set after a 3 s freeze is as fresh as the last one before."""
    from engine.capture.group import CaptureGroup
    from engine.specs import CameraSpec

    url = servers.rtsp(fps=30)
    cameras = [CameraSpec(f"cam{i}", url, 640, 480, 30.0) for i in range(2)]
    with CaptureGroup(cameras) as group:
        recording = group.start_recording(tmp_path, "mjpeg", name="paused")
        wait_for(lambda: min(group.counts()) > recording.first_frame + 60, 10, "2 s recorded")
        group.freeze()
        time.sleep(3.0)  # the hold itself: frames keep arriving meanwhile
        group.unfreeze()
        wait_for(lambda: min(group.counts()) > recording.first_frame + 120, 10, "2 s more")
        group.stop_recording()
    sync = measure_stamp_sync(tmp_path / "paused")
    assert sync.unreadable == 0 and sync.spread_ms(100) <= 1000 / 30, sync.summary()
    # Each frame's age when grabbed; before the drain, frames queued during the hold
    # were replayed after it, 5745 ms late.
    age_ms = (sync.grabbed_ns - sync.served_ns) / 1e6
    assert age_ms.max() < 500, sync.summary()


def spreads_ms(recorded: Recorded) -> tuple[np.ndarray, np.ndarray]:
    """Per frame set whose stamps all decoded: the spread of the capture_ns the timestamps
    record (as the sync report takes it) and of the moments the pictures show (ms)."""
    timestamps = {camera["id"]: read_timestamps(recorded.folder / camera["timestamps"])
                  for camera in recorded.manifest["cameras"]}
    captured = frame_set_stamps(timestamps, "capture_ns")[:, recorded.sync.readable]
    return (captured.max(axis=0) - captured.min(axis=0)) / MS, recorded.sync.spread_ns / MS


def spread_figures(name: str, recorded: Recorded, captured: np.ndarray,
                   shown: np.ndarray) -> str:
    difference = np.abs(captured - shown)
    return (f"{name}: {len(difference)} frame sets; |capture spread - shown spread| ms "
            f"p50 {np.percentile(difference, 50):.1f} p99 {np.percentile(difference, 99):.1f} "
            f"max {difference.max():.1f}; p99 ms: capture_ns {np.percentile(captured, 99):.1f}, "
            f"decoded {recorded.sync.spread_ms(99):.1f}")


def test_the_sync_reports_spread_is_the_spread_the_pictures_show(two_rtsp):
    """The sync report (and so verify) judges capture_ns; that is honest only if its spread
    is the spread of the moments the frames show: within 5 ms per frame set at p99, and
    the report's p99 within 5 ms of the decoded one."""
    captured, shown = spreads_ms(two_rtsp)
    report = json.loads((two_rtsp.folder / SYNC_REPORT_NAME).read_text())
    figures = spread_figures("two_rtsp", two_rtsp, captured, shown)
    print(figures)
    assert np.percentile(np.abs(captured - shown), 99) <= 5, figures
    assert abs(report["p99_ms"] - two_rtsp.sync.spread_ms(99)) <= 5, figures


@mixed_recording
def test_cameras_of_different_kinds_differ_only_by_constant_delays(two_rtsp_one_mjpeg):
    """An RTSP camera's capture time comes from its sender reports (the true one, here),
    an MJPEG camera's from its steady clock fitted under its arrivals, which keeps the
    server's quickest delay: between kinds the report's spread is off by that constant
    delay (the README says so). Once each camera's median delay is taken out, the
    spreads' p99 agree within 5 ms, and per frame set within 10 ms at p99: the MJPEG
    camera's delivery jitter (tens of ms at p99 on a loaded 2-core machine) stays out."""
    recorded = two_rtsp_one_mjpeg
    timestamps = [read_timestamps(recorded.folder / camera["timestamps"])
                  for camera in recorded.manifest["cameras"]]
    readable = recorded.sync.readable
    delays = np.array([t["capture_ns"][readable] for t in timestamps]) \
        - recorded.sync.served_ns[:, readable]
    corrected = np.array([t["capture_ns"][readable] for t in timestamps]) \
        - np.median(delays, axis=1, keepdims=True)
    captured = (corrected.max(axis=0) - corrected.min(axis=0)) / MS
    shown = recorded.sync.spread_ns / MS
    figures = spread_figures("two_rtsp_one_mjpeg (median delays removed)", recorded,
                             captured, shown)
    figures += "; median delays ms " + ", ".join(f"{d:.1f}" for d in np.median(delays, 1) / MS)
    print(figures)
    assert abs(np.percentile(captured, 99) - recorded.sync.spread_ms(99)) <= 5, figures
    assert np.percentile(np.abs(captured - shown), 99) <= 10, figures


def test_one_camera_of_a_stream_is_copied_and_the_other_decoded(two_rtsp):
    """Two cameras on one H.264 stream: the first is recorded by copy, the second (a
    group copies one) decoded; both show the very same source frames above."""
    recorded_as = [camera["recorded_as"] for camera in two_rtsp.manifest["cameras"]]
    assert recorded_as == ["copy", "encode"]


@mixed_recording
def test_a_camera_faster_than_the_rig_is_not_copied(two_rtsp_one_mjpeg):
    """The 30 fps H.264 cameras beside a 25 fps one: copying would have to skip packets
    between keyframes, so `record = "auto"` encodes them and says so."""
    cameras = two_rtsp_one_mjpeg.manifest["cameras"]
    assert [camera["recorded_as"] for camera in cameras] == ["encode"] * 3
    assert cameras[0]["settings"]["record"] == "encode"
