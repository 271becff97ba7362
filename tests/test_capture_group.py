"""The capture group with real processes and synthetic cameras: the invariants of
docs/architecture.md (what the sync gate guarantees).

Every recording made here is checked by decoding its files: identical frame
counts, and frame k of every file carries the same burned-in frame number.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.capture.group import CaptureGroup, GroupError
from engine.recording.manifest import read_manifest
from engine.recording.verify import verify_recording
from engine.sensors.sidecar import read_sidecar
from engine.sources.base import SettingRejected
from engine.specs import CameraSpec, SensorSpec
from tests.conftest import free_port, leak_guard, tool_or_skip
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(90)

SMALL = {"width": 256, "height": 192}


def rig(n: int, fps: float = 60.0, **settings) -> list[CameraSpec]:
    return [CameraSpec(f"cam{i}", "synthetic", fps=fps, settings=dict(settings), **SMALL)
            for i in range(n)]


def assert_verified(folder: Path, sync_tolerance_ms: float | None = None) -> dict:
    report = verify_recording(folder, sync_tolerance_ms)
    assert report.ok, report.summary()
    manifest = read_manifest(folder)
    counts = {camera["frames"] for camera in manifest["cameras"]}
    assert len(counts) == 1, manifest["cameras"]
    return manifest


@pytest.fixture(scope="module")
def group():
    """One running group shared by several tests (start-up costs seconds), leak-checked whole."""
    with leak_guard(), CaptureGroup(rig(3)) as running:
        yield running


def test_recording_holds_identical_frames_in_every_file(group, tmp_path):
    recording = group.start_recording(tmp_path, "h264")
    time.sleep(1.0)
    group.stop_recording()
    manifest = assert_verified(recording.folder)
    assert manifest["status"] == "finalized"
    frames = manifest["cameras"][0]["frames"]
    assert 40 <= frames <= 75  # ~1 s at 60 fps
    assert manifest["last_frame"] - manifest["first_frame"] == frames
    assert manifest["sync"]["frame_sets"] == frames


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["run", "pause", "freeze"]), st.floats(0.0, 0.3)),
        min_size=1, max_size=4,
    ),
    lead_in=st.floats(0.0, 0.2),
    codec=st.sampled_from(["h264", "mjpeg", "ffv1"]),
)
def test_random_start_pause_freeze_stop_points_keep_files_identical(
    group, tmp_path_factory, steps, lead_in, codec
):
    time.sleep(lead_in)
    recording = group.start_recording(tmp_path_factory.mktemp("rec"), codec)
    for action, seconds in steps:
        if action == "freeze":
            group.freeze()
            frozen_counts = group.counts()
            time.sleep(seconds)
            assert group.counts() == frozen_counts  # nobody grabs while frozen
            assert len(set(frozen_counts)) == 1  # held at one common frame
            group.unfreeze()
        elif action == "pause":
            group.pause()  # writing only: the cameras run on
            time.sleep(seconds)
            group.resume()
        else:
            time.sleep(seconds)
    group.stop_recording()
    manifest = assert_verified(recording.folder)
    segments = manifest["segments"]
    assert manifest["cameras"][0]["frames"] == sum(last - first for first, last in segments)


def test_counts_never_differ_by_more_than_one(group):
    spread = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        counts = group.counts()
        spread = max(spread, max(counts) - min(counts))
    assert spread <= 1


def test_freeze_holds_the_cameras_a_gap_in_the_timestamps_not_in_the_frames(group, tmp_path):
    """Freeze preview (the old pause): every camera is held at one frame, so a take gets
    no frames meanwhile; its frame numbers stay contiguous and its clock stands still."""
    from engine.recording.timestamps import read_timestamps

    recording = group.start_recording(tmp_path, "mjpeg")
    time.sleep(0.3)
    group.freeze()
    assert group.frozen and not group.paused
    held = group.counts()
    elapsed = recording.elapsed_s
    time.sleep(0.5)
    assert group.counts() == held and len(set(held)) == 1
    assert recording.elapsed_s == pytest.approx(elapsed, abs=0.02)
    group.unfreeze()
    assert not group.frozen
    time.sleep(0.3)
    group.stop_recording()
    manifest = assert_verified(recording.folder)
    stamps = read_timestamps(recording.folder / manifest["cameras"][0]["timestamps"])
    gaps_ms = (stamps["after_grab_ns"][1:] - stamps["after_grab_ns"][:-1]) / 1e6
    assert gaps_ms.max() >= 450
    assert (stamps["frame"][1:] - stamps["frame"][:-1] == 1).all()
    assert len(manifest["segments"]) == 1


def test_pause_with_live_preview_keeps_rings_advancing_and_files_identical(tmp_path):
    """Pause stops writing only: during it every camera's ring keeps advancing (what a
    tile shows) while no file grows; after resume every camera's file holds the same
    frame sets, and the timestamps' frame numbers and the manifest's segments show the
    same gap: exactly the frames between the Paused and Resumed boundaries."""
    import numpy as np

    from engine.ipc.ring import FrameRing
    from engine.recording.timestamps import read_timestamps
    from engine.sources import framecode
    from engine.wire import events

    seen: list[events.Event] = []
    # Rings of 15 slots: capture going on for 40 frames proves the writers step over the
    # frames they do not write (a writer that stopped would hold its ring full).
    with leak_guard(), CaptureGroup(rig(3), ring_seconds=0.25, on_event=seen.append,
                                    sensors=[SensorSpec("imu", "imu:synthetic")]) as group:
        recording = group.start_recording(tmp_path, "mjpeg")
        wait_for(lambda: min(group.counts()) > recording.first_frame + 20, 10, "frames recorded")
        group.pause()
        assert group.paused and not group.frozen
        paused = next(e for e in seen if isinstance(e, events.Paused))
        time.sleep(0.3)  # the writers step past the boundary; what they wrote is on disk
        videos = sorted(recording.folder.glob("*.mkv"))
        sizes = [path.stat().st_size for path in videos]
        elapsed = recording.elapsed_s
        counts = group.counts()
        tiles = []
        for _camera, ring_name, _settings in group.rings():
            ring = FrameRing.attach(ring_name)  # as a tile does, in this process
            image = np.zeros(ring.shape, np.uint8)
            ring.read_latest(image)
            tiles.append((ring, image, framecode.read(image)[0]))
        time.sleep(0.7)
        advanced = [after - before for before, after in zip(counts, group.counts(), strict=True)]
        shown = []
        for ring, image, before in tiles:
            ring.read_latest(image)
            shown.append(framecode.read(image)[0] - before)
            ring.close()
        assert min(advanced) >= 30, advanced  # ~42 frames at 60 fps: capture goes on
        assert min(shown) >= 30, shown  # and so does the preview
        assert [path.stat().st_size for path in videos] == sizes  # nothing is written
        assert recording.elapsed_s == pytest.approx(elapsed, abs=0.02)  # nor timed
        group.resume()
        resumed = next(e for e in seen if isinstance(e, events.Resumed))
        wait_for(lambda: min(group.counts()) > resumed.frame + 20, 10, "frames after resume")
        group.stop_recording()
    manifest = assert_verified(recording.folder)
    first, p, r = recording.first_frame, paused.frame, resumed.frame
    assert r - p >= 40  # the whole pause is skipped
    last = manifest["last_frame"]
    assert manifest["segments"] == [[first, p], [r, last]]
    expected = [*range(first, p), *range(r, last)]
    for camera in manifest["cameras"]:
        frames = read_timestamps(recording.folder / camera["timestamps"])["frame"]
        assert frames.tolist() == expected, camera["id"]  # identical in every camera
        assert camera["frames"] == len(expected)
    assert manifest["sync"]["frame_sets"] == len(expected)
    # The sensor's sidecar skips the pause too; its track plays the segments back to back.
    header, rows = read_sidecar(recording.folder / "sensors" / "imu.csv")
    sampled = [int(row[header.index("frame")]) for row in rows]
    assert any(f < p for f in sampled) and any(f >= r for f in sampled)
    assert not [f for f in sampled if p < f < r]  # one taken at the boundary may be kept
    assert manifest["sensors"][0]["track"] == "sensors/imu.mkv"


def test_pause_without_a_take_is_refused_and_freeze_is_not(group):
    with pytest.raises(GroupError, match="nothing is being recorded"):
        group.pause()
    with pytest.raises(GroupError, match="nothing is being recorded"):
        group.resume()
    group.freeze()
    try:
        held = group.counts()
        time.sleep(0.2)
        assert group.counts() == held
    finally:
        group.unfreeze()
    wait_for(lambda: min(group.counts()) > max(held) + 5, 5, "the cameras running again")


def test_a_take_that_stops_while_paused_ends_at_the_pause(group, tmp_path):
    """Stop during a writing pause: the files end where writing paused; a pause right at
    the start still keeps the take's first frame set, so no take is empty."""
    recording = group.start_recording(tmp_path / "a", "mjpeg")
    group.pause()  # at once: at least the first frame set is kept
    time.sleep(0.3)
    group.stop_recording()
    manifest = assert_verified(recording.folder)
    (segment,) = manifest["segments"]
    assert segment[0] == recording.first_frame and manifest["last_frame"] == segment[1]
    assert 1 <= manifest["cameras"][0]["frames"] <= 3
    assert not group.paused  # the pause belonged to the take
    follow = group.start_recording(tmp_path / "b", "mjpeg")
    time.sleep(0.3)
    group.stop_recording()
    assert len(assert_verified(follow.folder)["segments"]) == 1


def test_one_slow_camera_paces_the_group_without_drift(tmp_path):
    cameras = rig(2, fps=100.0)
    cameras.append(CameraSpec("slow", "synthetic", fps=100.0, settings={"grab_delay_ms": 4.0},
                              **SMALL))
    with CaptureGroup(cameras) as group:
        recording = group.start_recording(tmp_path, "mjpeg")
        widest = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            counts = group.counts()
            widest = max(widest, max(counts) - min(counts))
        group.stop_recording()
    assert widest <= 1
    assert_verified(recording.folder)


def test_writer_lag_slows_capture_instead_of_losing_frames(tmp_path):
    """Unpaced cameras with tiny rings outrun the encoder: capture must wait, not overwrite."""
    cameras = [CameraSpec(f"cam{i}", "synthetic", 640, 480, 30.0, {"paced": False})
               for i in range(2)]
    with CaptureGroup(cameras, ring_seconds=0.01) as group:
        recording = group.start_recording(tmp_path, "ffv1")
        time.sleep(1.5)
        group.stop_recording()
    manifest = assert_verified(recording.folder)
    assert manifest["cameras"][0]["frames"] > 10


def test_killed_camera_finalizes_every_file_at_the_last_complete_frame_set(tmp_path):
    ffprobe = tool_or_skip("ffprobe")
    with CaptureGroup(rig(3)) as group:
        recording = group.start_recording(tmp_path, "h264")
        time.sleep(0.8)
        victim = group.snapshot()["cameras"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        assert recording.done.wait(15), "recording was not finalized after a camera died"
        with pytest.raises(GroupError):
            group.start_recording(tmp_path, "h264")  # refuses while a camera is down
    manifest = assert_verified(recording.folder)
    assert manifest["status"] == "interrupted"
    assert any("cam1" in error for error in manifest["errors"])
    frames = manifest["cameras"][0]["frames"]
    assert frames > 20
    for camera in manifest["cameras"]:
        assert probe_frame_count(ffprobe, recording.folder / camera["file"]) == frames


def probe_frame_count(ffprobe: str, path: Path) -> int:
    import subprocess

    result = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return int(result.stdout.strip())


def test_size_and_fps_change_mid_session_recreates_rings_and_keeps_sync(tmp_path):
    with CaptureGroup(rig(2)) as group:
        old_ring = group.ring_name("cam0")
        applied = group.update_settings(None, {"width": 320, "height": 240, "fps": 50.0})
        assert applied["cam0"]["width"] == 320 and applied["cam1"]["fps"] == 50.0
        assert group.ring_name("cam0") != old_ring
        counts = group.counts()
        assert len(set(counts)) == 1
        recording = group.start_recording(tmp_path, "mjpeg")
        time.sleep(0.6)
        with pytest.raises(SettingRejected):
            group.update_settings("cam0", {"width": 256})  # geometry is fixed while recording
        group.update_settings("cam1", {"brightness": 40})  # other settings are fine
        time.sleep(0.3)
        group.stop_recording()
    manifest = assert_verified(recording.folder)
    assert manifest["fps"] == 50.0
    assert manifest["cameras"][0]["settings"]["width"] == 320


def test_rejected_setting_names_the_reason_and_changes_nothing():
    with CaptureGroup(rig(1)) as group:
        before = group.settings("cam0")
        with pytest.raises(SettingRejected, match="brightness"):
            group.update_settings("cam0", {"brightness": 1000})
        with pytest.raises(SettingRejected, match="nonsense"):
            group.update_settings("cam0", {"nonsense": 1})
        assert group.settings("cam0") == before
        time.sleep(0.2)
        counts = group.counts()
        time.sleep(0.2)
        assert group.counts()[0] > counts[0]  # still capturing


def test_a_camera_that_will_not_open_fails_start_with_its_name():
    cameras = [*rig(1), CameraSpec("broken", "/dev/video99")]
    with pytest.raises(GroupError, match=r"broken.*video99"):
        CaptureGroup(cameras).start()


def test_bad_rig_is_refused_before_anything_starts():
    with pytest.raises(GroupError, match="nope"):
        CaptureGroup([CameraSpec("cam0", "nope")])
    with pytest.raises(GroupError, match="repeated"):
        CaptureGroup([CameraSpec("a"), CameraSpec("a")])
    with pytest.raises(GroupError, match="cam0"):
        CaptureGroup([CameraSpec("cam0", width=-4)])


def test_unwritable_output_folder_is_refused_and_capture_goes_on(group, tmp_path):
    from engine.recording.errors import RecordingError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordingError, match="a-file"):
        group.start_recording(blocker / "out", "h264")
    assert group.recording is None
    recording = group.start_recording(tmp_path / "ok", "h264")
    time.sleep(0.2)
    group.stop_recording()
    assert_verified(recording.folder)


def make_stamped_video(path: Path, frames: int = 90, fps: int = 15) -> Path:
    """A small real video file whose frames carry stamps 0..frames-1 (camera index 9)."""
    import av
    import numpy as np

    from engine.sources import framecode

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 256, 192, "yuvj420p"
        image = np.full((192, 256, 3), 80, np.uint8)
        for n in range(frames):
            framecode.burn(image, n, 9)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_network_camera_and_video_file_record_in_lock_step_with_synthetic(
    tmp_path, mjpeg_server
):
    """A real MJPEG camera (ffmpeg on 127.0.0.1) and a file replay join a synthetic camera."""
    url = mjpeg_server.start(free_port())
    video = make_stamped_video(tmp_path / "clip.mkv")
    cameras = [
        CameraSpec("net", url, 320, 240, 15.0),
        CameraSpec("file", str(video), 256, 192, 15.0),
        CameraSpec("synth", "synthetic", 256, 192, 15.0),
    ]
    with CaptureGroup(cameras) as group:
        assert group.settings("net")["width"] == 320
        recording = group.start_recording(tmp_path / "out", "mjpeg")
        time.sleep(2.0)
        group.stop_recording()
    # Counts and lock-step are this test's point (time-true sync: test_stamped_servers.py).
    # ffmpeg serving on the same loaded 2 cores misses frames now and then; the set then
    # repeats the previous one, a period older: two periods of tolerance, not one.
    manifest = assert_verified(recording.folder, sync_tolerance_ms=2 * 1000 / 15.0)
    assert manifest["cameras"][0]["frames"] >= 15
    assert not manifest["cameras"][0]["synthetic"]


def _rows(path: Path) -> int:
    """Timestamp rows a writer has handed to the OS (what survives its SIGKILL)."""
    return max(0, len(path.read_bytes().splitlines()) - 1) if path.exists() else 0


def test_a_dead_writer_never_blocks_capture_and_ends_the_recording(tmp_path):
    with CaptureGroup(rig(2), ring_seconds=0.1) as group:
        recording = group.start_recording(tmp_path, "mjpeg")
        wait_for(lambda: min(_rows(recording.timestamps_path(c)) for c in ("cam0", "cam1")) > 12,
                 10, "both writers synced more than 12 timestamp rows to disk")
        os.kill(group.process_ids()["cam0-writer"], signal.SIGKILL)
        assert recording.done.wait(15), "recording was not finalized after its writer died"
        counts = group.counts()
        time.sleep(0.5)  # far longer than the 0.1 s ring: capture must not be stuck on it
        assert min(group.counts()) > min(counts)
        second = group.start_recording(tmp_path, "mjpeg", name="after")  # a fresh writer
        time.sleep(0.5)
        group.stop_recording()
    assert assert_verified(second.folder)["status"] == "finalized"
    manifest = assert_verified(recording.folder)  # trimmed to the frames both files hold
    assert manifest["status"] == "interrupted"
    # Named once, per camera (it used to read "cam0: cam0: recording writer exited").
    assert "cam0: recording writer exited (code -9)" in manifest["errors"]
    assert manifest["cameras"][1]["frames"] > 10


def test_a_new_recording_starts_while_the_last_one_is_finalized(group, tmp_path):
    first = group.start_recording(tmp_path, "mjpeg")
    time.sleep(0.8)
    group.stop_recording(assembled=False)  # the writers are done: capture is free
    second = group.start_recording(tmp_path, "mjpeg")
    time.sleep(0.5)
    group.stop_recording()
    assert first.done.wait(30)
    for recording in (first, second):
        assert_verified(recording.folder)


def test_the_disk_guard_refuses_a_take_and_ends_one_before_the_disk_fills(tmp_path):
    from engine.system.disk_guard import GB, DiskGuard, LowDiskError
    from engine.wire.events import Error

    free = [10 * GB]
    guard = DiskGuard(2 * GB, 1 * GB, free_bytes=lambda _path: int(free[0]))
    events: list = []
    with CaptureGroup(rig(1), disk_guard=guard, on_event=events.append) as group:
        free[0] = 0.5 * GB
        with pytest.raises(LowDiskError, match=r"only 0\.50 GB free in .*; recording needs at "
                                               r"least 1\.00 GB"):
            group.start_recording(tmp_path, "mjpeg")
        assert group.recording is None and not any(tmp_path.iterdir())
        free[0] = 10 * GB
        recording = group.start_recording(tmp_path, "mjpeg")
        start = group.counts()[0]
        deadline = time.monotonic() + 10
        while group.counts()[0] < start + 20:
            assert time.monotonic() < deadline, "no frames recorded"
            time.sleep(0.02)
        free[0] = 0.5 * GB  # the guard looks about once a second
        assert recording.done.wait(15), "the disk guard did not end the take"
    assert recording.status == "finalized"
    assert any(isinstance(e, Error) and "disk almost full" in e.message for e in events)
    assert assert_verified(recording.folder)["cameras"][0]["frames"] >= 20


class PublishTimes:
    """When each frame of some cameras was published (the rings' after-publish stamps),
    gathered by a thread that reads the rings far more often than they wrap."""

    def __init__(self, group: CaptureGroup, camera_ids: list[str]) -> None:
        from engine.ipc.ring import FrameRing

        self._rings = {camera_id: FrameRing.attach(group.ring_name(camera_id))
                       for camera_id in camera_ids}
        self.stamps: dict[str, dict[int, int]] = {camera_id: {} for camera_id in camera_ids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publish-times", daemon=True)

    def __enter__(self) -> PublishTimes:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for ring in self._rings.values():
            ring.close()

    def _run(self) -> None:
        from engine.ipc.ring import M_AFTER_PUBLISH, M_FRAME, M_SEQ

        while not self._stop.wait(0.005):
            for camera_id, ring in self._rings.items():
                rows = ring.meta.copy()
                for row in rows[(rows[:, M_SEQ] > 0) & (rows[:, M_SEQ] % 2 == 0)]:
                    self.stamps[camera_id][int(row[M_FRAME])] = int(row[M_AFTER_PUBLISH])

    def longest_gap_s(self, camera_id: str, start_ns: int, end_ns: int) -> float:
        """The longest time between two frames published one after the other in the
        window; every frame of it must have been seen."""
        stamps = sorted((n, at) for n, at in self.stamps[camera_id].items()
                        if start_ns <= at <= end_ns)
        assert len(stamps) > 1, f"{camera_id} published next to nothing in the window"
        numbers = [n for n, _ in stamps]
        missed = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        assert not missed, f"{camera_id}: frames {missed} were not seen ({len(numbers)} were)"
        return max((later - earlier) / 1e9
                   for (_, earlier), (_, later) in itertools.pairwise(stamps))


@pytest.fixture(params=["mjpeg", "rtsp"])
def cut_camera(request, mjpeg_server):
    """(url, fps, cut, restore): a network camera served on 127.0.0.1, a way to cut its
    server mid-stream, and one to serve it again on the same port (None: not offered)."""
    if request.param == "mjpeg":
        port = free_port()
        yield mjpeg_server.start(port), 15.0, mjpeg_server.kill, lambda: mjpeg_server.start(port)
        return
    from tests.stamped_servers import StampedServers

    servers = StampedServers()
    try:
        yield servers.rtsp(320, 240, fps=30), 30.0, servers.stop, None
    finally:
        servers.stop()


@pytest.mark.timeout(120)
def test_a_network_camera_that_drops_leaves_the_gate_without_stalling_the_others(cut_camera):
    """Issue 14.9: the synthetic cameras froze for 1.8-2.5 s when a network camera's server
    went, while the camera retried its stream inside the sync gate. It must leave the gate
    within a couple of its frame periods: no other camera waits longer than that plus
    the scheduling slack of a loaded 2-core machine, and the camera shows as
    reconnecting within a second."""
    url, fps, cut, restore = cut_camera
    period_s = 1 / fps
    cameras = [CameraSpec("net", url, 320, 240, fps, {"open_timeout_ms": 4000}),
               CameraSpec("gated", "synthetic", fps=fps, **SMALL),
               CameraSpec("free", "synthetic", fps=fps, settings={"clock": "free"}, **SMALL)]
    others = ["gated", "free"]

    def net_status() -> str:
        return next(c["status"] for c in group.snapshot()["cameras"] if c["id"] == "net")

    with CaptureGroup(cameras, ring_seconds=4.0) as group:  # a stall's catch-up fits
        wait_for(lambda: min(group.counts()) > 2 * fps, 10, "every camera running")
        with PublishTimes(group, others) as times:
            time.sleep(0.5)  # frames before the cut, for the gap across it
            cut_ns = time.monotonic_ns()
            cut()
            wait_for(lambda: net_status() == "reconnecting", 10, "net reconnecting", step_s=0.01)
            lost_after_s = (time.monotonic_ns() - cut_ns) / 1e9
            wait_for(lambda: time.monotonic_ns() > cut_ns + 3e9, 4, "3 s after the cut")
            end_ns = time.monotonic_ns()
        gaps = {camera_id: times.longest_gap_s(camera_id, cut_ns - 200_000_000, end_ns)
                for camera_id in others}
        print(f"\nlongest gap across the cut: {gaps} (period {period_s * 1000:.0f} ms); "
              f"reconnecting {lost_after_s:.3f} s after it")
        # Two frame periods to leave the gate, one more for the set under way, and the
        # slack of a loaded 2-core machine: today's stall (1.8-2.5 s) fails it.
        assert max(gaps.values()) < 3 * period_s + 0.3, gaps
        assert lost_after_s < 1.0
        if restore is not None:  # the camera rejoins once its server is back
            restore()
            wait_for(lambda: net_status() == "running", 20, "net back in the gate")
            frames = group.counts()
            wait_for(lambda: min(group.counts()) > max(frames) + fps, 5, "all cameras running")
