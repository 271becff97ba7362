"""The bench's network-camera, time-true sync and writer-cost figures keep working (their
values are for the closing note, so only their presence and sanity are asserted, never a
timing)."""

from __future__ import annotations

import shutil

import pytest

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
from engine.bench.writer_cost import (
    bare_encoder_ms,
    bench_wake,
    bench_writer_cost,
    print_writer_cost,
    synthetic_frames,
    wake_target,
    writer_cost_targets,
)
from tests.conftest import tool_or_skip
from tests.stamped_servers import rtsp_server_or_skip


@pytest.mark.slow  # 10-25 s of measuring: .ci/run's slow step
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


@pytest.mark.slow  # 10-25 s of measuring: .ci/run's slow step
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


@pytest.mark.slow  # about 50 s of measuring: .ci/run's slow step
def test_the_writer_is_measured_against_the_bare_encoder_on_both_contents(capsys):
    rows = bench_writer_cost(((320, 240),), seconds=1.5)
    assert [(row["size"], row["content"]) for row in rows] == [
        ("320x240", "clean"), ("320x240", "realistic")]
    for row in rows:
        assert row["bare_encoder_ms"] > 0 and row["writer_ms"] > 0 and row["ratio"] > 0, row
        assert 0 <= row["idle_writer_percent"] < 100
    clean, realistic = rows
    assert realistic["bare_encoder_ms"] > clean["bare_encoder_ms"]  # harder to encode
    print_writer_cost(rows)
    assert "realistic" in capsys.readouterr().out
    assert len(writer_cost_targets(rows)) == 3


def test_the_bare_encoder_gets_the_synthetic_cameras_own_frames():
    frames = synthetic_frames("clean", 320, 240, 5)
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)
    assert any((frames[0] != frame).any() for frame in frames[1:])  # the pattern moves
    assert bare_encoder_ms(frames, codec="mjpeg") > 0


def test_the_writer_wake_is_measured_from_ring_to_run():
    row = bench_wake(rings=20)
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] < 1000, row
    assert "within 1.0 ms" in wake_target(row)[0]
