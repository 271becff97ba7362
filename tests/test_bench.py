"""The bench's network-camera figure keeps working (its value is for the closing note,
so only its presence and sanity are asserted, never a timing)."""

from __future__ import annotations

import shutil

from engine.bench.network_camera import (
    bench_network_camera,
    network_camera_target,
    print_network_camera,
)
from tests.conftest import tool_or_skip


def test_network_camera_figure_is_measured_and_printed(capsys):
    tool_or_skip("ffmpeg")
    row = bench_network_camera(seconds=2.0, warm_up_s=1.0)
    for side in ("bare_reader", "capture_path"):
        assert row[side]["fps"] > 0 and row[side]["cpu_percent"] > 0, row
    assert row["ratio"] > 0
    print_network_camera(row)
    printed = capsys.readouterr().out
    assert "MPEG-TS over HTTP" in printed and "bare reader" in printed
    assert f"{row['ratio']}x" in printed
    text, _ = network_camera_target(row)
    assert "1.5x" in text


def test_without_ffmpeg_the_figure_is_skipped_with_a_reason(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    row = bench_network_camera(seconds=2.0)
    assert network_camera_target(row) is None
    print_network_camera(row)
    assert "skipped: ffmpeg is not on PATH" in capsys.readouterr().out
