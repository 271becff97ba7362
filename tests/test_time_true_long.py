"""A minute of cameras whose clocks disagree: a free-running synthetic camera at 29 fps
beside a stamped RTSP camera at 30 fps. Sets come at 29 fps, so the RTSP camera's extra
frame every second is skipped, never queued: its latency must not grow (before frame sets
were chosen by time it grew by 33 ms every second). Slow: run by .ci/run's own step."""

from __future__ import annotations

import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.recording.stamp_sync import UNREAD, measure_stamp_sync
from engine.recording.timestamps import read_timestamps
from engine.recording.verify import verify_recording
from engine.specs import CameraSpec
from tests.conftest import leak_guard
from tests.stamped_servers import StampedServers
from tests.waiting import wait_for

SECONDS = 60
WINDOW_S = 10


@pytest.mark.slow
def test_an_rtsp_camera_beside_a_slower_free_running_one_keeps_its_latency(tmp_path):
    with leak_guard():
        servers = StampedServers()
        try:
            url = servers.rtsp(fps=30)
            cameras = [CameraSpec("free29", "synthetic", 640, 480, 29.0, {"clock": "free"}),
                       CameraSpec("rtsp30", url, 640, 480, 30.0, {"record": "encode"})]
            with CaptureGroup(cameras) as group:
                recording = group.start_recording(tmp_path, "mjpeg", name="minute")
                first = recording.first_frame
                wait_for(lambda: min(group.counts()) >= first + SECONDS * 29, SECONDS + 30,
                         f"{SECONDS} s recorded")
                group.stop_recording()
        finally:
            servers.stop()
    folder = tmp_path / "minute"
    report = verify_recording(folder)
    assert report.ok, report.summary()
    sync = measure_stamp_sync(folder)
    rtsp = sync.cameras.index("rtsp30")
    read = sync.counters[rtsp] != UNREAD
    assert read.mean() > 0.99, sync.summary()
    # How old each RTSP frame was when the set took it, over the first and the last 10 s.
    age_ms = (sync.grabbed_ns[rtsp] - sync.served_ns[rtsp])[read] / 1e6
    window = WINDOW_S * 29
    early, late = np.median(age_ms[:window]), np.median(age_ms[-window:])
    figures = f"RTSP age ms: first {WINDOW_S} s {early:.1f}, last {WINDOW_S} s {late:.1f}"
    print(figures)
    assert abs(late - early) <= 1000 / 29, figures
    # The skipped frames are counted: about one a second, none queued.
    stamps = read_timestamps(folder / "timestamps" / "rtsp30.csv")
    served = sync.counters[rtsp][read]
    skipped = int(np.sum(np.clip(np.diff(served) - 1, 0, None)))
    assert 0.5 * SECONDS <= skipped <= 2 * SECONDS, (skipped, figures)
    # Repeats (a set with no new frame) only where the stand-in server on the same loaded
    # 2 cores missed a frame: at most 1 % of the sets (a fresh-clone CI run saw 12 of 1741).
    assert int(np.sum(stamps["repeat"])) <= len(stamps["repeat"]) // 100, figures
