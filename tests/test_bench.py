"""The bench's network-camera and time-true sync figures keep working (their values are
for the closing note, so only their presence and sanity are asserted, never a timing)."""

from __future__ import annotations

import shutil

from engine.bench.network_camera import (
    bench_network_camera,
    network_camera_targets,
    print_network_camera,
)
from engine.bench.stamped_sync import (
    bench_stamped_sync,
    print_stamped_sync,
    stamped_sync_targets,
)
from tests.conftest import tool_or_skip
from tests.stamped_servers import rtsp_server_or_skip


def test_network_camera_figure_is_measured_and_printed(capsys):
    tool_or_skip("ffmpeg")
    row = bench_network_camera(seconds=2.0, warm_up_s=1.0)
    for side in ("bare_reader", "bare_opencv_reader", "capture_path", "ffmpeg_copy",
                 "record_copy"):
        assert row[side]["fps"] > 0 and row[side]["cpu_percent"] > 0, row
    assert row["ratio"] > 0 and row["copy_ratio"] > 0
    print_network_camera(row)
    printed = capsys.readouterr().out
    assert "MPEG-TS over HTTP" in printed and "bare PyAV reader" in printed
    assert f"{row['ratio']}x" in printed and f"{row['copy_ratio']}x" in printed
    (text, _), (copy_text, _) = network_camera_targets(row)
    assert "1.5x" in text and "3.0x the CPU of ffmpeg -c copy" in copy_text


def test_without_ffmpeg_the_figure_is_skipped_with_a_reason(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    row = bench_network_camera(seconds=2.0)
    assert network_camera_targets(row) == []
    print_network_camera(row)
    assert "skipped: ffmpeg is not on PATH" in capsys.readouterr().out


def test_the_time_true_sync_figure_decodes_a_real_recording(capsys):
    rtsp_server_or_skip()
    row = bench_stamped_sync(seconds=3.0)
    assert row["frame_sets"] >= 60 and row["unreadable"] == 0, row
    assert 0 <= row["same_frame"] <= 1 and 0 <= row["within_period"] <= 1
    assert set(row["latency_ms"]) == {"cam0", "cam1"}
    print_stamped_sync(row)
    printed = capsys.readouterr().out
    assert "same source frame" in printed and "decoded from the pictures" in printed
    assert len(stamped_sync_targets(row)) == 3
