"""The window never shows a state that is no longer true: an engine killed under it, a
take the engine ended on its own, the files just saved, the status bar's figures."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from engine.recording.manifest import read_manifest
from engine.wire.commands import Stop
from engine.wire.events import Device, Stats
from recorder_gui.engine_link import EngineLink
from recorder_gui.main_window import MainWindow
from tests.engines import Engine

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def engines(tmp_path):
    """The engine under test, and any started to replace it: all stopped at the end."""
    started = [Engine(tmp_path)]
    yield started
    for engine in started:
        engine.stop()


def open_window(qtbot, engines, tmp_path) -> MainWindow:
    def restart():
        engines.append(Engine(tmp_path, folder=engines[0].folder))
        return engines[-1].client()

    link = EngineLink(engines[0].client(), restart=restart)
    main = MainWindow(link, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: len(main.tiles.tiles) == 2
                    and all(t.frame_number >= 0 for t in main.tiles.tiles.values()),
                    timeout=15000)
    return main


def close_window(main: MainWindow) -> None:
    main.recording = False  # the test decided what happened to its recordings
    main.close()
    main.link.client.close()


def test_a_killed_engine_shows_no_signal_at_once_and_restart_reports_the_salvaged_take(
        qtbot, engines, tmp_path):
    main = open_window(qtbot, engines, tmp_path)
    try:
        main.record_action.trigger()
        qtbot.waitUntil(lambda: main.recording, timeout=15000)
        assert all(tile.badge()[0] == "● REC" for tile in main.tiles.tiles.values())
        qtbot.waitUntil(lambda: main.take_status.frames.text() not in ("", "0 frames"),
                        timeout=5000)
        time.sleep(1.0)  # a second of frames on disk to salvage
        os.kill(engines[0].process.pid, signal.SIGKILL)
        killed_at = time.monotonic()

        qtbot.waitUntil(lambda: all(t.no_signal for t in main.tiles.tiles.values()),
                        timeout=3000)
        assert time.monotonic() - killed_at < 1.0, "tiles kept showing a live picture"
        qtbot.waitUntil(lambda: main.link.liveness == "lost", timeout=2000)
        assert main.take_status.engine.text() == "engine NOT RUNNING"
        assert main.take_status.rec.text() == "not recording"
        assert not main.record_action.isEnabled() and not main.recording
        health = main.health_panel  # nothing the dead engine measured is shown as current
        assert {label.text() for label in health.device_values.values()} == {"—"}
        assert "engine lost" in health.log_lines()[-1]
        assert {main.recording_panel.table.item(row, 1).text()
                for row in range(main.recording_panel.table.rowCount())} == {"—"}
        assert main.recording_panel.state_label.text() == "Engine not running"
        assert main.notice.level == "error" and "not running" in main.notice.text.text()
        restart = main.notice.button("Restart engine")
        assert restart is not None

        restart.click()
        qtbot.waitUntil(lambda: "Recovered" in main.notice.text.text(), timeout=30000)
        folder = Path(main.notice.text.text().split("recording ", 1)[1].split(":", 1)[0])
        manifest = read_manifest(folder)
        assert manifest["status"] == "recovered"
        kept = manifest["cameras"][0]["frames"]
        assert kept >= 20 and f"{kept:,} frames per camera" in main.notice.text.text()
        assert main.link.liveness == "connected"
        assert main.take_status.engine.text() == "engine running"
        qtbot.waitUntil(lambda: not any(t.no_signal for t in main.tiles.tiles.values())
                        and all(t.frame_number >= 0 for t in main.tiles.tiles.values()),
                        timeout=15000)
        assert main.record_action.isEnabled()
    finally:
        close_window(main)


def test_a_take_the_engine_ends_itself_is_announced_with_its_reason(qtbot, engines, tmp_path):
    main = open_window(qtbot, engines, tmp_path)
    try:
        main.record_action.trigger()
        qtbot.waitUntil(lambda: main.recording, timeout=15000)
        time.sleep(0.5)
        with engines[0].client() as other:  # another client stops it: not this window's doing
            other.call(Stop(wait=False))
        qtbot.waitUntil(lambda: main.notice.isVisible() and "Saved" in main.notice.text.text(),
                        timeout=30000)
        assert main.notice.level in ("warning", "error")
        assert "without you asking" in main.notice.text.text()
        assert main.elapsed_label.text() == "00:00:00"  # the timer reset with the stop

        main.record_action.trigger()  # and one this window stops: a plain "Saved"
        qtbot.waitUntil(lambda: main.recording, timeout=15000)
        time.sleep(0.5)
        main.stop_action.trigger()
        qtbot.waitUntil(lambda: main.notice.level == "info"
                        and main.notice.text.text().startswith("Saved 2 × "), timeout=30000)
        assert main.notice.button("Open folder") is not None
        assert main.notice.button("Copy path") is not None
    finally:
        close_window(main)


def test_the_status_bar_follows_the_engines_figures(qtbot, engines, tmp_path):
    main = open_window(qtbot, engines, tmp_path)
    try:
        status = main.take_status
        main.link.dispatch(Stats(cameras=[{"id": "left", "frames": 9000, "dropped": 3},
                                          {"id": "right", "frames": 9000, "dropped": 0}],
                                 spread=None, paused=False, elapsed_s=75.0,
                                 recorded_frames=2250))
        assert status.dropped.text() == "dropped 3 / 18,000 (0.02 %)"
        with engines[0].client() as other:
            device = other.status()["device"]  # a real one, then the figures under test
        device["cpu"] = {**device["cpu"], "usage_percent": 37.0}
        device["storage"] = {**device["storage"], "free_bytes": 50_000_000_000,
                             "seconds_to_full": 7200.0}
        main.link.dispatch(Device(**device))
        assert status.cpu.text() == "CPU 37 %"
        assert status.disk.text() == "disk 50.0 GB free"
        main.record_action.trigger()
        qtbot.waitUntil(lambda: status.rec.text().startswith("● REC"), timeout=15000)
        qtbot.waitUntil(lambda: status.frames.text().endswith(" frames")
                        and status.frames.text() != "0 frames", timeout=5000)
        main.stop_action.trigger()
        qtbot.waitUntil(lambda: status.rec.text() == "not recording", timeout=15000)
    finally:
        close_window(main)


def test_pause_keeps_the_preview_live_and_freeze_holds_it_without_no_signal(
        qtbot, engines, tmp_path):
    from engine.recording.verify import verify_recording

    main = open_window(qtbot, engines, tmp_path)
    try:
        tiles = list(main.tiles.tiles.values())
        finalized = []
        main.link.recording_finalized.connect(finalized.append)
        main.record_action.trigger()
        qtbot.waitUntil(lambda: main.recording, timeout=15000)
        time.sleep(0.5)
        main.pause_action.trigger()
        qtbot.waitUntil(lambda: main.paused, timeout=10000)
        before = [tile.frame_number for tile in tiles]
        time.sleep(1.0)
        qtbot.waitUntil(  # the preview goes on while writing is paused
            lambda: all(t.frame_number >= b + 20 for t, b in zip(tiles, before, strict=True)),
            timeout=3000)
        assert all(tile.badge()[0] == "❚❚ PAUSED" and not tile.no_signal for tile in tiles)
        main.pause_action.trigger()
        qtbot.waitUntil(lambda: not main.paused, timeout=10000)
        time.sleep(0.5)
        main.stop_action.trigger()
        qtbot.waitUntil(lambda: bool(finalized), timeout=30000)
        folder = Path(finalized[0].folder)
        report = verify_recording(folder)
        assert report.ok, report.summary()
        manifest = read_manifest(folder)
        assert len({camera["frames"] for camera in manifest["cameras"]}) == 1
        assert len(manifest["segments"]) == 2  # before and after the pause

        main.freeze_action.trigger()  # the old pause: the cameras themselves are held
        qtbot.waitUntil(lambda: main.frozen, timeout=10000)
        held = [tile.frame_number for tile in tiles]
        time.sleep(1.5)
        main.tiles.pull()
        assert [tile.frame_number for tile in tiles] == held
        assert not any(tile.no_signal for tile in tiles)  # held on purpose: no alarm
        assert all(tile.badge()[0] == "FROZEN" for tile in tiles)
        main.freeze_action.trigger()
        qtbot.waitUntil(lambda: not main.frozen, timeout=10000)
        qtbot.waitUntil(lambda: all(t.frame_number > h for t, h in zip(tiles, held, strict=True)),
                        timeout=5000)
    finally:
        close_window(main)


def test_open_folder_without_a_file_manager_shows_and_copies_the_path(
        qtbot, engines, tmp_path, monkeypatch):
    from PySide6.QtGui import QGuiApplication

    from recorder_gui import main_window

    main = open_window(qtbot, engines, tmp_path)
    try:
        monkeypatch.setattr(main_window, "open_in_file_manager", lambda folder: False)
        main.open_folder(tmp_path / "take")
        assert str(tmp_path / "take") in main.notice.text.text()
        assert QGuiApplication.clipboard().text() == str(tmp_path / "take")
    finally:
        close_window(main)
