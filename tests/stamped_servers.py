"""Stand-in network cameras on 127.0.0.1 whose every frame carries a clock stamp.

Real servers, as a user's cameras would be: GStreamer's RTSP server (H.264, one shared
media, so every client receives the very same frames) and ffmpeg's MJPEG over HTTP (one
client). Each frame is stamped with CLOCK_MONOTONIC when it is made
(engine/sources/clockstamp.py), so decoding a recording proves which moment each of its
frames shows. Every process started here is ended by stop(), even after a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import free_port, missing_requirement, tool_or_skip
from tests.waiting import wait_listening

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
RTSP_SERVER = ROOT / "engine" / "bench" / "rtsp_stamped_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # has Debian's python3-gi; the venv has not
GSTREAMER_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly python3-gi python3-numpy"
)


def rtsp_server_or_skip() -> None:
    """Skip (fail in CI) when the system Python cannot run GStreamer's RTSP server."""
    try:
        check = subprocess.run([SYSTEM_PYTHON, str(RTSP_SERVER), "--check"],
                               capture_output=True, text=True, timeout=30, cwd=ROOT)
    except FileNotFoundError:
        missing_requirement(SYSTEM_PYTHON, "Debian's python3")
    if check.returncode != 0:
        problem = check.stdout.strip() or f"GStreamer's RTSP server for {SYSTEM_PYTHON}"
        missing_requirement(problem, GSTREAMER_PACKAGES)


class StampedServers:
    """Starts stamped servers on free ports; stop() ends them all."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen] = []
        self._logs: list[tuple[str, Any]] = []  # (what, its stderr file)

    def rtsp(self, width: int = 640, height: int = 480, fps: int = 30, late_s: float = 0,
             port: int | None = None) -> str:
        """rtsp://127.0.0.1:PORT/stamped: H.264 at fps, the frames shared by every client;
        with late_s, every client after the first starts playing late_s later; on `port`
        (a server back after an outage), else a free one."""
        rtsp_server_or_skip()
        port = port or free_port()
        # stdin stays open while we live: the server ends if this process dies unannounced.
        server = self._start([SYSTEM_PYTHON, str(RTSP_SERVER),
                              str(port), "stamped", str(width), str(height), str(fps), str(late_s)],
                             stdin=subprocess.PIPE, env={**os.environ, "GST_DEBUG": "2"})
        wait_listening(server, port, "the RTSP server")
        return f"rtsp://127.0.0.1:{port}/stamped"

    def mjpeg(self, width: int = 640, height: int = 480, fps: int = 25) -> str:
        """http://127.0.0.1:PORT/cam.mjpg: MJPEG over HTTP at fps, for a single client."""
        ffmpeg = tool_or_skip("ffmpeg")
        port = free_port()
        url = f"http://127.0.0.1:{port}/cam.mjpg"
        feed = self._start([sys.executable, str(TESTS / "stamped_feed.py"),
                            str(width), str(height), str(fps)], stdout=subprocess.PIPE)
        server = self._start(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
             "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-q:v", "3", "-threads", "1",
             "-flush_packets", "1", "-f", "mpjpeg", "-listen", "1", url],
            stdin=feed.stdout)
        assert feed.stdout is not None
        feed.stdout.close()  # ffmpeg holds the pipe now; the feed ends when ffmpeg does
        wait_listening(server, port, "ffmpeg's MJPEG server")
        return url

    def log(self) -> str:
        """What the servers printed on stderr so far: a failing test shows it."""
        parts = []
        for what, file in self._logs:
            file.seek(0)
            parts.append(f"--- {what} stderr ---\n{file.read().decode(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def _start(self, command: list[str], stdin: Any = subprocess.DEVNULL,
               stdout: Any = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115  (kept for log(), closed by stop())
        self._logs.append((Path(command[1]).name, stderr))
        process = subprocess.Popen(command, cwd=ROOT, stdin=stdin, stdout=stdout,
                                   stderr=stderr, env=env)
        self._processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdin is not None:
                process.stdin.close()
        for _, file in self._logs:
            file.close()
        self._logs.clear()
