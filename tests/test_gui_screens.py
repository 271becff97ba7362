"""The real window under a real X server (Xvfb) at the two screen sizes labs have most:
it fits the screen, and no panel, table or list scrolls sideways. Screenshots are kept
in the test's folder (and printed) to look at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def x_server():
    """A private Xvfb display; yields a function that starts it at a given size."""
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb (apt install xvfb)")
    missing = _missing_xcb_libraries()
    if missing:
        pytest.skip(f"Qt's xcb platform plugin lacks {', '.join(missing)} (.ci/run names "
                    "the Debian packages)")
    started: list[subprocess.Popen] = []

    def start(size: str) -> str:
        display = f":{90 + len(started) + os.getpid() % 50}"
        server = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten",
                                   "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(server)
        socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        return display

    yield start
    for server in started:
        server.terminate()
        server.wait(10)


def _missing_xcb_libraries() -> list[str]:
    """Shared libraries Qt's xcb platform plugin needs and this machine lacks (ldd)."""
    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    lines = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    missing = {line.split()[0] for line in lines.splitlines() if "not found" in line}
    known = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    if "libxcb-cursor.so.0" not in known:  # Qt loads it at run time, so ldd cannot tell
        missing.add("libxcb-cursor.so.0")
    return sorted(missing)


@pytest.mark.parametrize("size", ["1366x768", "1920x1080"])
def test_the_window_fits_the_screen_and_nothing_scrolls_sideways(x_server, tmp_path, size):
    display = x_server(size)
    shot = tmp_path / f"window-{size}.png"
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "RECORDER_RUNTIME_DIR": str(tmp_path / "run"),
           "RECORDER_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path)}
    (tmp_path / "run").mkdir()
    done = subprocess.run([sys.executable, "-m", "tests.screen_check", str(shot),
                           str(tmp_path / "recordings")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"screenshot at {size}: {shot}")
    assert report["live"] and report["recording"], report
    assert report["fits"], f"the window {report['window']} is larger than {report['screen']}"
    assert report["sideways"] == [], report["sideways"]
    assert shot.stat().st_size > 10_000
