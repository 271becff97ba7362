"""The desktop bundle: its entry point, self-test, desktop entry and About box.

The fast tests run unfrozen; the slow one builds the bundle with PyInstaller and runs it
(.ci/run builds and self-tests the bundle in a step of its own).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import __version__
from engine.client import FROZEN_ENGINE_FLAG, EngineClient, EngineNotRunning, engine_command
from engine.wire.paths import RUNTIME_DIR_ENV, socket_path
from recorder_gui import app
from tests.engines import short_folder
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NAME = "recorder-workstation"


def test_self_test_records_verifies_and_cleans_up(capsys):
    assert app.main(["--self-test"]) == 0
    out = capsys.readouterr().out
    assert "self-test: PASSED" in out
    assert f"all running {os.path.realpath(sys.executable)}" in out
    assert re.search(r"cam1: (\d+) frames decoded", out)
    runtime = Path(re.search(r"answers on (\S+)", out).group(1))
    engine_pid = re.search(r"engine pid (\d+)", out).group(1)
    assert not runtime.exists()
    assert not list(Path("/dev/shm").glob(f"rw{engine_pid}_*"))


def test_the_engine_is_launched_from_the_bundle_executable_when_frozen(monkeypatch):
    assert engine_command("serve") == [sys.executable, "-m", "engine", "serve"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert engine_command("serve", "--demo", "2") == [
        sys.executable, FROZEN_ENGINE_FLAG, "serve", "--demo", "2"]


@pytest.mark.parametrize(("args", "program"), [
    ([FROZEN_ENGINE_FLAG, "--help"], "recorder-engine"), (["--help"], "recorder-gui")])
def test_the_entry_point_runs_the_engine_cli_or_the_gui(args, program):
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "entry.py"), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {program}")


def test_desktop_entry_names_the_executable_and_an_icon_that_exists():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(ROOT / "packaging" / f"{NAME}.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Exec"] == NAME
    assert desktop["Icon"] == NAME == app.DESKTOP_ID
    png = app.ICON.read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == 256
    assert (ROOT / "resources" / f"{NAME}.svg").exists()


def test_about_box_shows_name_and_version(qtbot, engine, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from recorder_gui.engine_link import EngineLink
    from recorder_gui.main_window import APP_NAME, MainWindow

    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda *args: shown.append(args))
    client = engine.client()
    window = MainWindow(EngineLink(client), QSettings(str(tmp_path / "gui.ini"),
                                                      QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        menus = [action.text() for action in window.menuBar().actions()]
        assert "&Help" in menus
        window.about_action.trigger()
        _parent, title, text = shown[0]
        assert APP_NAME in title and f"{APP_NAME} {__version__}" in text
    finally:
        window.close()
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_built_bundle_records_and_shows_frames_with_one_qt(tmp_path):
    """Build with PyInstaller, self-test, then run the GUI offscreen from the bundle."""
    pyinstaller = Path(sys.executable).parent / "pyinstaller"
    if not pyinstaller.exists():
        pytest.skip("PyInstaller is not installed (pip install -e .[packaging])")
    subprocess.run([str(pyinstaller), "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "build"),
                    str(ROOT / "packaging" / "recorder.spec")], check=True, timeout=800)
    bundle = tmp_path / "dist" / NAME
    exe = bundle / NAME
    qt_libs = [p for p in bundle.rglob("libQt6*") if not p.is_symlink()]
    assert qt_libs and all("PySide6/Qt/lib" in str(p) for p in qt_libs)  # one Qt, PySide6's
    assert not list(bundle.rglob("PyQt*")) and not list(bundle.rglob("cv2/qt"))
    assert (bundle / f"{NAME}.desktop").exists() and (bundle / f"{NAME}.png").exists()

    done = subprocess.run([str(exe), "--self-test"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"all running {exe}" in done.stdout

    runtime = short_folder()
    env = {**os.environ, RUNTIME_DIR_ENV: str(runtime), "QT_QPA_PLATFORM": "offscreen"}
    try:
        gui = subprocess.run([str(exe), "--demo", "2", "--quit-after", "6"], env=env,
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert gui.returncode == 0, gui.stdout + gui.stderr
        assert "first frame on screen" in gui.stdout
        # The GUI launched the engine and shuts it down.
        wait_for(lambda: not socket_path(runtime).exists(), 20,
                 "the frozen engine shutting down with the GUI", step_s=0.1)
    finally:
        with contextlib.suppress(EngineNotRunning), EngineClient.connect(runtime) as client:
            client.shutdown()  # a GUI that failed leaves its engine running, by design
        shutil.rmtree(runtime, ignore_errors=True)
