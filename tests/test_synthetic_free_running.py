"""The synthetic camera's free-running clock: its own rate, jitter, missed frames, no backlog.

The schedule itself is checked without sleeping (FreeClock is a pure function of its seed
and start); the source is checked in real time, loosely, since the machine may be busy; and
a capture group of free-running cameras still records identical counts that verify.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import av
import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.recording.manifest import read_manifest
from engine.recording.session import Recording
from engine.recording.timestamps import read_timestamps
from engine.recording.verify import verify_recording
from engine.rig import RigError, demo_camera_settings, rig_from_dict
from engine.sources import SettingRejected, framecode
from engine.sources.free_clock import FreeClock
from engine.sources.synthetic import FREE_CLOCK_KEYS, SyntheticSource
from engine.specs import CameraSpec
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(90)

WIDTH, HEIGHT = 320, 240


@pytest.fixture
def free():
    opened = []

    def make(camera_index: int = 0, fps: float = 30.0, **settings) -> SyntheticSource:
        source = SyntheticSource(camera_index, WIDTH, HEIGHT, fps, {"clock": "free", **settings})
        source.open()
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()


def grab_number(source: SyntheticSource, out: np.ndarray) -> int:
    """Grab, retrieve (as group frame 0, which a free camera does not stamp) and read the stamp."""
    assert source.grab()
    source.retrieve(out, 0)
    stamp = framecode.read(out)
    assert stamp is not None
    return stamp[0]


# --- the schedule ------------------------------------------------------------------------


def test_the_schedule_runs_at_the_scaled_rate_with_bounded_delivery_jitter():
    clock = FreeClock(29.97, jitter_ms=1.0, miss_probability=0.0, seed=7)
    clock.start(now_ns=1_000_000_000)
    period_ns = 1e9 / 29.97
    ticks = np.array([1_000_000_000 + i * period_ns for i in range(20_000)])
    captured = np.array([clock.captured_ns(i) for i in range(20_000)])
    assert np.abs(captured - ticks).max() <= 1  # on the crystal's tick (whole ns)
    delays = np.array([clock.delivered_ns(i) for i in range(20_000)]) - captured
    assert delays.min() >= 0 and delays.max() < 1e6  # delivered within 1 ms after it
    assert delays.max() > 0.9e6 and delays.min() < 0.1e6  # and it does use the range
    delivered = [clock.delivered_ns(i) for i in range(20_000)]
    assert all(b > a for a, b in itertools.pairwise(delivered))  # in order
    rate = (20_000 - 1) / ((captured[-1] - captured[0]) / 1e9)
    assert rate == pytest.approx(29.97, rel=1e-5)


def test_missed_frames_occur_at_the_configured_probability():
    clock = FreeClock(30.0, jitter_ms=0.0, miss_probability=0.01, seed=3)
    missed = sum(clock.missed(i) for i in range(100_000))
    assert 850 <= missed <= 1150  # 1000 expected, sd about 31
    other_seed = FreeClock(30.0, jitter_ms=0.0, miss_probability=0.01, seed=4)
    assert [clock.missed(i) for i in range(5000)] != [other_seed.missed(i) for i in range(5000)]


def test_the_cameras_of_a_rig_miss_frames_independently():
    """Each camera's seed is the rig's seed and its index; once, camera c's misses were
    camera 0's shifted by 4c frames, so every tile of the demo dropped a frame at once."""
    frames = 100_000
    missed = [np.array([clock.missed(i) for i in range(frames)])
              for clock in (FreeClock(30.0, 0.0, 0.01, seed=index) for index in range(4))]
    for other in missed[1:]:
        for shift in range(-16, 17):  # chance: about 10 coincidences at any shift
            both = missed[0][max(0, shift):frames + min(0, shift)] & \
                other[max(0, -shift):frames - max(0, shift)]
            assert both.sum() < 30, shift


def test_the_newest_frame_skips_missed_ones_and_never_goes_back():
    clock = FreeClock(100.0, jitter_ms=2.0, miss_probability=0.3, seed=1)
    clock.start(now_ns=0)
    for now_ms in range(0, 1000, 3):
        newest = clock.newest(now_ms * 1_000_000)
        if newest >= 0:
            assert not clock.missed(newest) and clock.delivered_ns(newest) <= now_ms * 1_000_000
            later = [i for i in range(newest + 1, newest + 3)
                     if not clock.missed(i) and clock.delivered_ns(i) <= now_ms * 1_000_000]
            assert later == []  # nothing newer was out yet


# --- the source, in real time --------------------------------------------------------------


def test_measured_rate_matches_the_actual_rate(free):
    source = free(fps=30.0, rate_scale=0.999, jitter_ms=1.0, seed=2)  # 29.97 on a nominal 30
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    first_number, first_time = grab_number(source, out), time.monotonic_ns()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        number, returned = grab_number(source, out), time.monotonic_ns()
    rate = (number - first_number) / ((returned - first_time) / 1e9)
    assert rate == pytest.approx(29.97, rel=0.005)
    assert source.settings()["fps"] == 30.0  # the nominal rate, as a real camera reports it


def test_a_late_caller_gets_the_newest_frame_and_no_backlog(free):
    source = free(fps=100.0, jitter_ms=1.0, seed=5)
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    before = grab_number(source, out)
    time.sleep(0.1)  # 10 frame periods
    after = grab_number(source, out)
    assert 9 <= after - before <= 14  # the newest frame: about 10 later (loose: busy machines)
    assert source.dropped == after - before - 1  # the frames in between were never seen
    started = time.monotonic()
    following = grab_number(source, out)
    waited = time.monotonic() - started
    assert following == after + 1  # no backlog: the next frame is the next one produced ...
    assert waited > 0.002  # ... and the caller waited for it


def test_frames_produced_while_the_group_was_held_are_not_dropped(free):
    source = free(fps=100.0)
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    before = grab_number(source, out)
    time.sleep(0.05)  # held: paused, or waiting at the start-up barrier
    source.flush()
    after = grab_number(source, out)
    assert after - before >= 4  # the clock ran on meanwhile ...
    assert source.dropped == 0  # ... but like the gated schedule's reset, a flush forgives it


def test_a_hold_of_a_frame_or_two_drops_nothing_either():
    """A take's start or a freeze holds the group for a frame period or two; the frames a
    free-running camera made meanwhile belong to no frame set and are not dropped ones
    (before, only holds over two periods were forgiven: every take's start showed
    "dropped 1" on every tile of the demo; and a hold that came and went while a camera
    waited for its moment went unseen)."""
    cameras = [CameraSpec(f"cam{index}", "synthetic", WIDTH, HEIGHT, 30.0,
                          {"clock": "free", "jitter_ms": 0.0, "miss_probability": 0.0})
               for index in range(2)]
    with CaptureGroup(cameras) as group:
        # Holds short enough to fall inside a camera's wait for its next moment, too.
        for hold_s in (0.0, 0.005, 0.01, 0.02, 0.03, 0.05) * 2:
            group.freeze()
            time.sleep(hold_s)
            group.unfreeze()
            reached = max(group.counts())
            wait_for(lambda reached=reached: min(group.counts()) >= reached + 3, 10.0,
                     "frame sets after the hold")
        assert [camera["dropped"] for camera in group.snapshot()["cameras"]] == [0, 0]


def test_a_settings_change_keeps_the_count_going(free):
    source = free(fps=100.0, jitter_ms=1.0)
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    before = grab_number(source, out)
    source.apply({"jitter_ms": 2.0, "rate_scale": 1.01})
    assert grab_number(source, out) == before + 1


def test_missed_frames_show_as_gaps_in_the_stamped_numbers(free):
    source = free(fps=200.0, miss_probability=0.2, seed=11)
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    numbers = [grab_number(source, out) for _ in range(150)]
    gaps = np.diff(numbers)
    assert (gaps >= 1).all()  # only ever forwards
    assert (gaps > 1).sum() >= 10  # about 30 frames are missed among 190
    assert source.dropped == numbers[-1] + 1 - len(numbers)  # every number not handed out


def test_capture_time_is_monotonic_and_close_to_the_grab(free):
    source = free(fps=60.0, jitter_ms=1.0, seed=9)
    lags, captures = [], []
    for _ in range(60):
        assert source.grab()
        returned = time.monotonic_ns()
        captured = source.capture_ns()
        assert captured is not None
        captures.append(captured)
        lags.append(returned - captured)
    assert all(b > a for a, b in itertools.pairwise(captures))
    assert min(lags) >= 0  # never a frame from the future
    assert np.percentile(lags, 90) < 5e6  # an on-time caller gets it within a few ms


def test_a_gated_camera_reports_no_capture_time_and_stamps_the_group_frame():
    source = SyntheticSource(0, WIDTH, HEIGHT, 30.0, {"paced": False})
    source.open()
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    assert source.grab()
    source.retrieve(out, 1234)
    assert framecode.read(out) == (1234, 0)
    assert source.capture_ns() is None
    source.close()


# --- settings --------------------------------------------------------------------------------


def test_clock_settings_are_listed_for_a_free_camera_only(free):
    names = {spec.name for spec in free().properties()}
    assert {"clock", *FREE_CLOCK_KEYS} <= names
    gated = SyntheticSource(0, WIDTH, HEIGHT, 30.0)
    assert not {"clock", *FREE_CLOCK_KEYS} & {spec.name for spec in gated.properties()}
    settings = gated.apply({"clock": "free", "rate_scale": "0.999", "jitter_ms": 1})
    assert (settings["clock"], settings["rate_scale"], settings["jitter_ms"]) == ("free", 0.999, 1)
    assert "rate_scale" in {spec.name for spec in gated.properties()}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"clock": "wobbly"}, "clock must be one of gated, free"),
        ({"rate_scale": 0.1}, "rate_scale must be >= 0.5"),
        ({"jitter_ms": -1}, "jitter_ms must be >= 0"),
        ({"jitter_ms": 20}, r"jitter_ms must be below half a frame period \(16.7 ms at 30 fps\)"),
        ({"miss_probability": 0.9}, "miss_probability must be <= 0.5"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"clock": "free", "paced": False}, 'paced must be true with clock "free"'),
    ],
)
def test_invalid_clock_settings_are_rejected(settings, message):
    with pytest.raises(SettingRejected, match=message):
        SyntheticSource(0, WIDTH, HEIGHT, 30.0, settings)
    camera = {"id": "left", "source": "synthetic", "settings": settings}
    with pytest.raises(RigError, match=r"cameras\[1\]\.settings\.\w+: "):
        rig_from_dict({"name": "x", "cameras": [{"source": "synthetic"}, camera]})


# --- in a capture group ----------------------------------------------------------------------


def demo_cameras() -> list[CameraSpec]:
    """Two free-running cameras as in the demo rig (cam1 at 29.97)."""
    return [CameraSpec(f"cam{i}", "synthetic", 256, 192, 30.0, demo_camera_settings(i))
            for i in range(2)]


def record_verified(folder: Path, cameras: list[CameraSpec], frame_sets: int,
                    sync_tolerance_ms: float | None = None) -> Recording:
    """Record at least frame_sets sets as MJPEG; the recording must verify (against the
    sync tolerance given, else one frame period)."""
    with CaptureGroup(cameras) as group:
        recording = group.start_recording(folder, "mjpeg")
        start = min(group.counts())
        wait_for(lambda: min(group.counts()) >= start + frame_sets, 20.0,
                 f"{frame_sets} recorded frame sets")
        group.stop_recording()
    report = verify_recording(recording.folder, sync_tolerance_ms=sync_tolerance_ms)
    assert report.ok, report.summary()
    return recording


def test_a_group_of_free_running_cameras_records_and_verifies(tmp_path):
    recording = record_verified(tmp_path, demo_cameras(), 45)
    manifest = read_manifest(recording.folder)
    assert [c["settings"]["clock"] for c in manifest["cameras"]] == ["free", "free"]
    assert len({c["frames"] for c in manifest["cameras"]}) == 1  # the gate still holds
    for camera in manifest["cameras"]:
        stamps = decoded_stamps(recording.folder / camera["file"])
        assert all(index == camera["index"] for _, index in stamps)
        numbers = [number for number, _ in stamps]
        repeats = read_timestamps(recording.folder / camera["timestamps"])["repeat"][1:]
        # Each camera's own counter; the same number again only where a repeat is marked.
        assert all(b > a or (repeat and b == a)
                   for (a, b), repeat in zip(itertools.pairwise(numbers), repeats, strict=True))


def test_free_running_cameras_record_their_clocks_capture_times(tmp_path):
    cameras = [*demo_cameras(), CameraSpec("gated", "synthetic", 256, 192, 30.0, {})]
    # This test is about whose clock each capture time is. A free-running camera's set
    # takes the frame its own clock made up to a period before the moment (plus its
    # jitter), while the gated one makes it at the moment: in 31 sets a spread just over
    # one period is expected now and then (seen in CI: 2 sets at 38-39 ms), so two.
    recording = record_verified(tmp_path, cameras, 30, sync_tolerance_ms=2 * 1000 / 30.0)
    manifest = read_manifest(recording.folder)
    assert [c["capture_clock"] for c in manifest["cameras"]] == ["source", "source", "after_grab"]
    for camera in manifest["cameras"]:
        stamps = read_timestamps(recording.folder / camera["timestamps"])
        captured, grabbed = stamps["capture_ns"], stamps["after_grab_ns"]
        assert len(captured) == camera["frames"] >= 30
        if camera["capture_clock"] == "source":  # the clock made the frame before the grab
            assert (captured <= grabbed).all() and (captured < grabbed).mean() > 0.9
            # cam1 runs at 29.97 fps under a 30 fps set clock: once in about 1000 sets no
            # new frame came since the last set, and the last one is used again, flagged
            # (CI saw one in 31 sets). Every other set holds a newer frame.
            steps = np.diff(captured)
            repeats = stamps["repeat"][1:].astype(bool)
            assert (steps[~repeats] > 0).all() and (steps[repeats] == 0).all()
            assert repeats.sum() <= 1
        else:
            assert (captured == grabbed).all()
    sync = json.loads((recording.folder / "sync_report.json").read_text())
    assert sync["stamp"] == "capture_ns"
    assert set(sync["mean_offset_ms"]) == {"cam0", "cam1", "gated"}


def decoded_stamps(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        stamps = [framecode.read(frame.to_ndarray(format="bgr24"))
                  for frame in container.decode(video=0)]
    readable = [stamp for stamp in stamps if stamp is not None]
    assert len(readable) == len(stamps)
    return readable
