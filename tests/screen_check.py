"""Run inside a real X server (the caller starts Xvfb): open the workstation window on the
demo rig, record a few seconds, and report whether everything fits the screen.

Prints one JSON line: the screen and window geometry, every scroll area that shows a
horizontal scroll bar, and where the screenshot (taken while recording) was saved.
usage: python -m tests.screen_check SCREENSHOT.png RECORDINGS_DIR [maximized]
(maximized: the README's picture, the window filling a 1920x1080 screen)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractScrollArea, QApplication

from engine.client import EngineClient
from engine.wire.commands import Shutdown
from recorder_gui.engine_link import EngineLink
from recorder_gui.main_window import MainWindow


def wait(app: QApplication, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def sideways_scrolling(window: MainWindow) -> list[str]:
    """Every visible scroll area in the window (docks, tables, lists) with a horizontal
    scroll bar showing."""
    found = []
    for area in window.findChildren(QAbstractScrollArea):
        if area.isVisible() and area.horizontalScrollBar().isVisible():
            found.append(f"{type(area).__name__} in {area.parent().objectName() or '?'}")
    return found


def main(screenshot: str, recordings: str, how: str = "") -> int:
    app = QApplication(sys.argv[:1])
    client = EngineClient.connect(launch=["--demo", "4"])
    window = MainWindow(EngineLink(client),
                        QSettings(str(Path(recordings) / "gui.ini"), QSettings.Format.IniFormat))
    window.recording_panel.output_edit.setText(recordings)
    window.show()
    if how == "maximized":  # no window manager under Xvfb to maximize it: fill the screen
        window.setGeometry(window.screen().availableGeometry())
    live = wait(app, lambda: len(window.tiles.tiles) == 4
                and all(t.frame_number >= 0 for t in window.tiles.tiles.values()), 30)
    window.start_recording()
    wait(app, lambda: window.recording, 15)
    wait(app, lambda: False, 4.0)  # four seconds of a live, recording window
    screen = window.screen().availableGeometry()
    frame = window.frameGeometry()
    report = {
        "live": live, "recording": window.recording,
        "screen": [screen.x(), screen.y(), screen.width(), screen.height()],
        "window": [frame.x(), frame.y(), frame.width(), frame.height()],
        "fits": screen.contains(frame),
        "sideways": sideways_scrolling(window),
        "screenshot": screenshot,
    }
    window.screen().grabWindow(0).save(screenshot)
    window.stop_recording()
    wait(app, lambda: not window.recording, 15)
    window.link.command(Shutdown())
    window.recording = False
    window.close()
    client.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
