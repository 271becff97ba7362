"""Same count is not same moment, measured: two RTSP cameras on one stamped stream.

GStreamer's RTSP server (rtsp_stamped_server.py, run by the system Python where Debian's
python3-gi and gir1.2-gst-rtsp-server-1.0 are installed) serves one shared H.264 media
whose every frame carries the monotonic moment it was made; the second camera opens
1 s after the first. A capture group records both; decoding every recorded frame then
says which moment each file shows per frame set: how many sets show the very same
source frame, how many lie within one frame period, and how close the recording's own
sync report comes to the spread the pictures show.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from engine.bench.network_camera import free_port, wait_listening
from engine.capture.group import CaptureGroup
from engine.recording.manifest import read_manifest
from engine.recording.stamp_sync import measure_stamp_sync
from engine.specs import CameraSpec

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_stamped_server.py")
WIDTH, HEIGHT, FPS = 640, 480, 30
STREAM = (f"2 cameras on one stamped RTSP stream (H.264 {WIDTH}x{HEIGHT} @ {FPS} fps, "
          "GStreamer on 127.0.0.1), the second opening 1 s late")
SAME_FRAME_TARGET = 0.90
WITHIN_PERIOD_TARGET = 0.99
REPORT_MATCH_MS = 5.0


def bench_stamped_sync(seconds: float) -> dict[str, Any]:
    """Record both cameras for `seconds`; the decoded figures, or {"skipped": why}."""
    problem = _server_missing()
    if problem:
        return {"stream": STREAM, "skipped": problem}
    with _rtsp_server() as (url, log), tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
        cameras = [CameraSpec(f"cam{i}", url, WIDTH, HEIGHT, float(FPS)) for i in range(2)]
        try:
            with CaptureGroup(cameras) as group:
                recording = group.start_recording(Path(folder), "mjpeg", name="stamped")
                time.sleep(seconds)
                group.stop_recording()
        except Exception as error:  # the server's own account belongs with any failure
            log.seek(0)
            lines = [line for line in log.read().decode(errors="replace").splitlines()
                     if "Dropping old item buffer" not in line]  # one per frame: noise
            server_said = "\n".join([*lines[:40], "...", *lines[-20:]] if len(lines) > 60
                                     else lines)
            raise RuntimeError(f"{error}\n--- the stamped RTSP server's stderr ---\n"
                               f"{server_said}") from error
        sync = measure_stamp_sync(recording.folder)
        report = read_manifest(recording.folder)["sync"]
    return {
        "stream": STREAM,
        "seconds": seconds,
        "frame_sets": sync.frame_sets,
        "unreadable": sync.unreadable,
        "same_frame": round(sync.same_frame, 4),
        "within_period": round(sync.within(1000 / FPS), 4),
        "decoded_p99_ms": round(sync.spread_ms(99), 2),
        "report_p99_ms": report["p99_ms"],
        "latency_ms": {camera: round(ms, 1) for camera, ms in sync.latency_ms().items()},
    }


def print_stamped_sync(row: dict[str, Any]) -> None:
    """The figure's lines of the bench's closing table."""
    print(f"\ntime-true sync: {row['stream']}")
    if "skipped" in row:
        print(f"  skipped: {row['skipped']}")
        return
    latency = ", ".join(f"{camera} {ms}" for camera, ms in row["latency_ms"].items())
    print(f"  {row['frame_sets']} frame sets ({row['unreadable']} unreadable): same source "
          f"frame {row['same_frame']:.1%}, within one frame period {row['within_period']:.1%}")
    print(f"  spread p99 ms: decoded from the pictures {row['decoded_p99_ms']}, the sync "
          f"report {row['report_p99_ms']}; latency ms {latency}")


def stamped_sync_targets(row: dict[str, Any]) -> list[tuple[str, bool]]:
    """The target checks; none when the figure was skipped."""
    if "skipped" in row:
        return []
    match = abs(row["report_p99_ms"] - row["decoded_p99_ms"])
    return [
        (f"2 RTSP cameras on one stream: the same source frame >= {SAME_FRAME_TARGET:.0%} "
         f"of sets ({row['same_frame']:.1%})", row["same_frame"] >= SAME_FRAME_TARGET),
        (f"2 RTSP cameras on one stream: within one frame period >= "
         f"{WITHIN_PERIOD_TARGET:.0%} of sets ({row['within_period']:.1%})",
         row["within_period"] >= WITHIN_PERIOD_TARGET),
        (f"sync report p99 within {REPORT_MATCH_MS:.0f} ms of the pictures' ({match:.1f} ms)",
         match <= REPORT_MATCH_MS),
    ]


def _server_missing() -> str | None:
    """Why the system Python cannot serve the stream, or None."""
    try:
        check = subprocess.run([SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True,
                               text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run GStreamer's RTSP server ({exc})"
    if check.returncode != 0:
        return (f"{check.stdout.strip()} (Debian: apt install python3-gi python3-numpy "
                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)")
    return None


@contextmanager
def _rtsp_server() -> Iterator[tuple[str, IO[bytes]]]:
    """The stamped RTSP server on a free port, and its stderr (GStreamer's warnings);
    ended on leaving, always. Its stdin stays open while we live: it ends by itself if
    this process dies unannounced."""
    port = free_port()
    command = [SYSTEM_PYTHON, str(SERVER), str(port), "stamped", str(WIDTH), str(HEIGHT),
               str(FPS), "1.0"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=log, env={**os.environ, "GST_DEBUG": "2"})
        try:
            wait_listening(server, port, log)
            yield f"rtsp://127.0.0.1:{port}/stamped", log
        finally:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            if server.stdin is not None:
                server.stdin.close()
