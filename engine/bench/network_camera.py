"""Capture-path CPU of one 720p30 network camera, as a ratio to a bare PyAV reader.

Decoding the stream and turning it into BGR pictures is a network camera's unavoidable
cost; what the engine adds on top (the drain thread, the sync gate, the copy into the
ring slot) is what this figure is about. So the sides read the same kind of local stream
for the same time in the same run: a process doing nothing but decode and
to_ndarray("bgr24") with PyAV (the engine's own decoder: the target's baseline), the same
with OpenCV's VideoCapture.read() (shown beside it), and the camera process of a real
capture group. Each reads its own ffmpeg server, because `-listen 1` serves one client.
The ratio is CPU per delivered frame, so a side that delivers fewer frames is not
flattered by it. The capture path is the decoding one (`record = "encode"`).

A second figure is the same stream recorded by stream copy: the camera process and its
writer while a take records (no decoding but the live view's keyframes, packets muxed as
they come), against `ffmpeg -c copy` writing the stream to a Matroska file: the least
any recorder of that stream can spend. Both read live at the stream's rate, at the same
time (each from its own server), so the ratio is of CPU over the same seconds.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import psutil

from engine.bench.cpu import process_cpu_seconds
from engine.capture.group import CaptureGroup
from engine.specs import CameraSpec

TARGET_RATIO = 1.5
TARGET_COPY_RATIO = 3.0
WIDTH, HEIGHT, FPS = 1280, 720, 30
STREAM = f"H.264 {WIDTH}x{HEIGHT} @ {FPS} fps, MPEG-TS over HTTP from ffmpeg on 127.0.0.1"
_LISTEN_TIMEOUT_S = 10.0
_OPEN_TIMEOUT_S = 30.0


def bench_network_camera(seconds: float, warm_up_s: float = 2.0) -> dict[str, Any]:
    """CPU % of a core and frames/s of a bare reader and of the capture path, and their
    ratio per frame; {"skipped": why} when ffmpeg is not installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return {"stream": STREAM, "skipped": "ffmpeg is not on PATH (Debian: apt install ffmpeg)"}
    with _stream(ffmpeg) as url:
        bare = _measure_bare_reader(url, "pyav", warm_up_s, seconds)
    with _stream(ffmpeg) as url:
        bare_opencv = _measure_bare_reader(url, "opencv", warm_up_s, seconds)
    with _stream(ffmpeg) as url:
        engine = _measure_capture_path(url, warm_up_s, seconds)
    ffmpeg_copy, record_copy = _measure_copies(ffmpeg, warm_up_s, seconds)
    return {
        "stream": STREAM,
        "seconds": seconds,
        "bare_reader": bare,
        "bare_opencv_reader": bare_opencv,
        "capture_path": engine,
        "ratio": _ratio(engine, bare),
        "ratio_to_opencv": _ratio(engine, bare_opencv),
        "ffmpeg_copy": ffmpeg_copy,
        "record_copy": record_copy,
        "copy_ratio": round(record_copy["cpu_share"] / ffmpeg_copy["cpu_share"], 2)
        if ffmpeg_copy["cpu_share"] else 0.0,
    }


def _ratio(side: dict[str, float], baseline: dict[str, float]) -> float:
    per_frame = baseline["cpu_ms_per_frame"], side["cpu_ms_per_frame"]
    return round(per_frame[1] / per_frame[0], 2) if all(per_frame) else 0.0


def print_network_camera(row: dict[str, Any]) -> None:
    """The figure's lines of the bench's closing table."""
    print(f"\nnetwork camera CPU per frame: {row['stream']}")
    if "skipped" in row:
        print(f"  skipped: {row['skipped']}")
        return
    print(f"{'':<20}{'cpu %':>7}{'frames/s':>10}{'cpu ms/frame':>14}")
    for label, key in (("bare PyAV reader", "bare_reader"),
                       ("bare OpenCV reader", "bare_opencv_reader"),
                       ("capture path", "capture_path")):
        side = row[key]
        print(f"{label:<20}{side['cpu_percent']:>7}{side['fps']:>10}{side['cpu_ms_per_frame']:>14}")
    print(f"  capture path / bare PyAV reader, per frame: {row['ratio']}x "
          f"(/ bare OpenCV reader: {row['ratio_to_opencv']}x; {row['seconds']:.0f} s each)")
    print(f"{'ffmpeg -c copy':<20}{row['ffmpeg_copy']['cpu_percent']:>7}")
    print(f"{'recording by copy':<20}{row['record_copy']['cpu_percent']:>7}"
          f"{row['record_copy']['fps']:>10}{row['record_copy']['cpu_ms_per_frame']:>14}")
    print(f"  recording by copy (camera + writer) / ffmpeg -c copy, CPU: {row['copy_ratio']}x")


def network_camera_targets(row: dict[str, Any]) -> list[tuple[str, bool]]:
    """The target checks; none when the figure was skipped."""
    if "skipped" in row:
        return []
    return [
        (f"720p30 network camera capture path <= {TARGET_RATIO}x a bare PyAV reader per "
         f"frame ({row['ratio']}x)", 0 < row["ratio"] <= TARGET_RATIO),
        (f"720p30 network camera recorded by copy <= {TARGET_COPY_RATIO}x the CPU of "
         f"ffmpeg -c copy ({row['copy_ratio']}x)", 0 < row["copy_ratio"] <= TARGET_COPY_RATIO),
    ]


@contextmanager
def _stream(ffmpeg: str) -> Iterator[str]:
    """An ffmpeg server of the test stream for one client; ended on leaving, always."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/cam.ts"
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS),
        "-f", "mpegts", "-listen", "1", url,
    ]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_listening(server, port, log)
            yield url
        finally:
            server.kill()
            server.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(server: subprocess.Popen, port: int, log: Any) -> None:
    """Watch the server's sockets rather than connect: a connection would use up the one
    client it serves."""
    deadline = time.monotonic() + _LISTEN_TIMEOUT_S
    while not any(conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
                  for conn in psutil.Process(server.pid).net_connections("tcp")):
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"ffmpeg did not serve the test stream on port {port}: "
                               f"{log.read().decode(errors='replace').strip()}")
        time.sleep(0.05)


def _bare_reader(url: str, kind: str, warm_up_s: float, seconds: float, results: Any) -> None:
    """Child process: read the stream into BGR pictures with PyAV or OpenCV, then measure
    its own CPU and frames over `seconds`."""
    try:
        read, close = _open_pyav(url) if kind == "pyav" else _open_opencv(url)
    except (OSError, av.error.FFmpegError, RuntimeError) as error:
        results.put(f"a bare {kind} reader could not open {url}: {error}")
        return
    try:
        deadline = time.monotonic() + warm_up_s
        while time.monotonic() < deadline:
            read()
        me = psutil.Process()
        frames, cpu_before, start = 0, process_cpu_seconds(me), time.monotonic()
        while time.monotonic() - start < seconds:
            frames += read()
        elapsed = time.monotonic() - start
        results.put((process_cpu_seconds(me) - cpu_before, frames, elapsed))
    finally:
        close()


def _open_pyav(url: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    container = av.open(url, timeout=_OPEN_TIMEOUT_S)
    stream = container.streams.video[0]
    frames = (frame for packet in container.demux(stream) for frame in packet.decode())

    def read() -> bool:
        frame = next(frames, None)
        return frame is not None and frame.to_ndarray(format="bgr24") is not None

    return read, container.close


def _open_opencv(url: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise RuntimeError("VideoCapture did not open")
    return (lambda: bool(cap.read()[0])), cap.release


def _measure_bare_reader(url: str, kind: str, warm_up_s: float, seconds: float
                         ) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    reader = ctx.Process(target=_bare_reader, args=(url, kind, warm_up_s, seconds, results))
    reader.start()
    try:
        outcome = results.get(timeout=_OPEN_TIMEOUT_S + warm_up_s + seconds + 30)
    finally:
        reader.join(10)
        if reader.is_alive():
            reader.kill()
            reader.join()
    if isinstance(outcome, str):
        raise RuntimeError(outcome)
    cpu_s, frames, elapsed = outcome
    return _side(cpu_s, frames, elapsed)


def _measure_capture_path(url: str, warm_up_s: float, seconds: float) -> dict[str, float]:
    """A group of one camera, not recording: the camera process's CPU and frames."""
    spec = CameraSpec("net0", url, WIDTH, HEIGHT, float(FPS), {"record": "encode"})
    with CaptureGroup([spec]) as group:
        time.sleep(warm_up_s)
        camera = psutil.Process(group.process_ids()[spec.camera_id])
        frames_before, cpu_before = group.counts()[0], process_cpu_seconds(camera)
        start = time.monotonic()
        time.sleep(seconds)
        frames, cpu_s = group.counts()[0] - frames_before, process_cpu_seconds(camera) - cpu_before
        elapsed = time.monotonic() - start
    return _side(cpu_s, frames, elapsed)


def _measure_copies(ffmpeg: str, warm_up_s: float, seconds: float
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """`ffmpeg -c copy` into a Matroska file and a group of one camera recording by copy
    (its camera and writer processes), side by side over the same seconds, each reading
    its own server of the stream: on a shared machine whose speed drifts from minute to
    minute, sides measured one after the other differed by up to 1.8x."""
    with (_stream(ffmpeg) as copier_url, _stream(ffmpeg) as camera_url,
          tempfile.TemporaryDirectory() as folder):
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", copier_url,
                   "-c", "copy", "-f", "matroska", "-y", f"{folder}/copy.mkv"]
        copier = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spec = CameraSpec("net0", camera_url, WIDTH, HEIGHT, float(FPS), {"record": "copy"})
        try:
            with CaptureGroup([spec]) as group:
                group.start_recording(Path(folder), "h264", name="copy")
                time.sleep(warm_up_s)
                pids = group.process_ids()
                sides = [[psutil.Process(copier.pid)],
                         [psutil.Process(pids[key]) for key in ("net0", "net0-writer")]]
                before = [sum(map(process_cpu_seconds, side)) for side in sides]
                frames_before, start = group.counts()[0], time.monotonic()
                time.sleep(seconds)
                after = [sum(map(process_cpu_seconds, side)) for side in sides]
                frames, elapsed = group.counts()[0] - frames_before, time.monotonic() - start
                group.stop_recording()
            if copier.poll() is not None:
                raise RuntimeError("ffmpeg -c copy ended before its figure was taken")
        finally:
            copier.kill()
            copier.wait()
    copied, recorded = (later - earlier for later, earlier in zip(after, before, strict=True))
    return _side(copied, round(elapsed * FPS), elapsed), _side(recorded, frames, elapsed)


def _side(cpu_s: float, frames: int, elapsed: float) -> dict[str, float]:
    return {
        "cpu_share": cpu_s / elapsed,  # unrounded, for ratios
        "cpu_percent": round(100 * cpu_s / elapsed, 2),
        "fps": round(frames / elapsed, 1),
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 3) if frames else 0.0,
    }
