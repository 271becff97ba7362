"""What recording costs against the encoder alone, on pictures as hard as a real camera's.

Per frame size and content ("clean": the synthetic camera's test pattern; "realistic":
textured, moving and noisy, engine/sources/synthetic.py), measured in one run:
- the bare encoder: PyAV's libx264 with the take's options, fed frames already in its
  input format (YUV 4:2:0) at the camera's rate, in this process with nothing else
  running: CPU per frame. At the camera's rate, not back to back: an encoder woken 30
  times a second finds its caches cold and pays the wake-ups (0.9 ms more per 640x480
  frame here than in a tight loop), and so does any writer;
- the writer: real one-camera takes of the same synthetic camera, the writer process's
  CPU per frame written (ring, conversion, encoding, muxing, timestamps, fsync);
- the idle writer: its CPU while the camera runs and nothing is recorded;
- the wake: how long after a camera rings a writer's doorbell (engine/ipc/doorbell.py)
  the writer process runs, rung at 30 Hz like a camera completing frame sets.
Bare runs and takes alternate (bare, take, bare, take, bare) and each side is the mean
of its runs: this shared machine's speed drifts by 10 % over tens of seconds, and one
3 s bare run on each side of one take put single ratios from 0.96 to 1.22.
The ratio writer / bare encoder is the engine's overhead on top of the encoder (goal
<= 1.15x). The headline take (4 cameras at 1280x720) adds the whole engine's CPU over the
sum of four bare encoders, and, per preset and codec, what one core encodes, so a rig that
cannot hold its rate is told which choice would.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import psutil

from engine.bench.cpu import process_cpu_seconds
from engine.capture.group import CaptureGroup
from engine.ipc.doorbell import Doorbell
from engine.recording.encoder import default_options, frame_rate
from engine.sources.synthetic import SyntheticSource
from engine.specs import CameraSpec

CONTENTS = ("clean", "realistic")
WRITER_TARGET_RATIO = 1.15
IDLE_WRITER_TARGET_PERCENT = 0.5
WAKE_TARGET_P99_MS = 1.0
_BARE_FRAMES = 90  # three seconds at 30 fps, each encoded twice by a bare run
_ROUNDS = 2  # takes per case, each between two bare runs
_WARM_UP_S = 1.0


def synthetic_frames(content: str, width: int, height: int, count: int) -> list[np.ndarray]:
    """The frames a synthetic camera with this content makes, in order (BGR)."""
    source = SyntheticSource(0, width, height, 30.0, {"content": content, "paced": False})
    source.open()
    frames = []
    try:
        for number in range(count):
            source.grab()
            frame = np.empty((height, width, 3), np.uint8)
            source.retrieve(frame, number)
            frames.append(frame)
    finally:
        source.close()
    return frames


def bare_encoder_ms(frames: list[np.ndarray], preset: str = "ultrafast",
                    codec: str = "h264", fps: float = 30.0) -> float:
    """CPU ms per frame of the encoder alone (its threads included), frames handed over in
    its own input format at fps (0: back to back); flushing counted, converting not. The
    frames go forth and back again: twice as many encodes, and no jump in the content
    that a restart from the first frame would cost."""
    height, width = frames[0].shape[:2]
    name, pix_fmt = {"h264": ("libx264", "yuv420p"), "mjpeg": ("mjpeg", "yuvj420p")}[codec]
    context = av.CodecContext.create(name, "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = 1 / frame_rate(30.0)
    options = default_options(codec, 30.0)
    if codec == "h264":
        options["preset"] = preset
    context.options = options
    if codec == "h264":
        planes = [np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), np.uint8)
                  for frame in frames]
        inputs = [av.VideoFrame.from_numpy_buffer(plane, format="yuv420p") for plane in planes]
    else:
        inputs = [av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format=pix_fmt)
                  for frame in frames]
    inputs += inputs[::-1]
    context.open()
    me = psutil.Process()
    before, start = process_cpu_seconds(me), time.monotonic()
    for index, picture in enumerate(inputs):
        if fps:
            time.sleep(max(0.0, start + index / fps - time.monotonic()))
        picture.pts = index
        context.encode(picture)
    context.encode(None)
    return (process_cpu_seconds(me) - before) * 1000 / len(inputs)


def record_cost(content: str, width: int, height: int, seconds: float,
                between: Callable[[], float]) -> dict[str, Any]:
    """One synthetic camera recorded to H.264 in _ROUNDS takes of `seconds`, between()
    run before the first take and after each: its writer's CPU per frame written, the
    camera process's CPU per frame, the writer's CPU while idle first, and between()'s
    results."""
    spec = CameraSpec("cam0", "synthetic", width, height, 30.0, {"content": content})
    writer_cpu = camera_cpu = 0.0
    frames = 0
    with tempfile.TemporaryDirectory() as output, CaptureGroup([spec]) as group:
        time.sleep(_WARM_UP_S)
        pids = group.process_ids()
        writer, camera = psutil.Process(pids["cam0-writer"]), psutil.Process(pids["cam0"])
        idle_before, start = process_cpu_seconds(writer), time.monotonic()
        time.sleep(min(seconds, 3.0))
        idle_percent = 100 * (process_cpu_seconds(writer) - idle_before) / (
            time.monotonic() - start)
        betweens = [between()]
        for round_number in range(_ROUNDS):
            writer_before = process_cpu_seconds(writer)
            camera_before = process_cpu_seconds(camera)
            recording = group.start_recording(Path(output), "h264", name=f"cost{round_number}")
            time.sleep(seconds)
            group.stop_recording()
            writer_cpu += process_cpu_seconds(writer) - writer_before
            camera_cpu += process_cpu_seconds(camera) - camera_before
            frames += recording.manifest["cameras"][0]["frames"]
            betweens.append(between())
    frames = max(frames, 1)
    return {"writer_ms": writer_cpu * 1000 / frames, "camera_ms": camera_cpu * 1000 / frames,
            "idle_writer_percent": idle_percent, "frames": frames, "between": betweens}


def bench_writer_cost(sizes: tuple[tuple[int, int], ...], seconds: float) -> list[dict[str, Any]]:
    """Per size and content: bare encoder and writer CPU per frame, their ratio, idle CPU."""
    rows = []
    for width, height in sizes:
        for content in CONTENTS:
            frames = synthetic_frames(content, width, height, _BARE_FRAMES)
            taken = record_cost(content, width, height, seconds,
                                functools.partial(bare_encoder_ms, frames))
            bare = float(np.mean(taken["between"]))
            rows.append({
                "size": f"{width}x{height}", "content": content,
                "bare_encoder_ms": round(bare, 3), "writer_ms": round(taken["writer_ms"], 3),
                "ratio": round(taken["writer_ms"] / bare, 3),
                "camera_ms": round(taken["camera_ms"], 3),
                "idle_writer_percent": round(taken["idle_writer_percent"], 3),
            })
    return rows


def encoder_choices(width: int, height: int, content: str) -> list[dict[str, Any]]:
    """Per x264 preset and MJPEG: CPU ms per frame on this content, and how many frames a
    second one core encodes with it."""
    frames = synthetic_frames(content, width, height, _BARE_FRAMES)
    rows = []
    for codec, preset in (("h264", "ultrafast"), ("h264", "superfast"), ("h264", "veryfast"),
                          ("mjpeg", "")):
        cost = bare_encoder_ms(frames, preset or "ultrafast", codec)
        rows.append({"codec": codec, "preset": preset, "ms_per_frame": round(cost, 3),
                     "frames_per_core_s": round(1000 / cost, 1)})
    return rows


def print_writer_cost(rows: list[dict[str, Any]]) -> None:
    print("\nrecording cost against the bare encoder (H.264 ultrafast; CPU ms per frame)")
    print(f"{'size':<11}{'content':<11}{'encoder':>9}{'writer':>9}{'ratio':>7}{'camera':>9}"
          f"{'idle writer %':>15}")
    for row in rows:
        print(f"{row['size']:<11}{row['content']:<11}{row['bare_encoder_ms']:>9.2f}"
              f"{row['writer_ms']:>9.2f}{row['ratio']:>7.2f}{row['camera_ms']:>9.2f}"
              f"{row['idle_writer_percent']:>15.2f}")


def print_encoder_choices(size: str, content: str, rows: list[dict[str, Any]]) -> None:
    print(f"\nwhat one core encodes at {size}, {content} content")
    for row in rows:
        name = f"{row['codec']} {row['preset']}".strip()
        print(f"  {name:<16}{row['ms_per_frame']:>7.2f} ms/frame  "
              f"{row['frames_per_core_s']:>7.1f} frames/s")


def writer_cost_targets(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    checks = [(f"writer <= {WRITER_TARGET_RATIO}x the bare encoder ({row['size']} "
               f"{row['content']}: {row['ratio']}x)", row["ratio"] <= WRITER_TARGET_RATIO)
              for row in rows]
    worst = max(row["idle_writer_percent"] for row in rows)
    checks.append((f"idle writer < {IDLE_WRITER_TARGET_PERCENT} % of a core (at most "
                   f"{worst} %)", worst < IDLE_WRITER_TARGET_PERCENT))
    return checks


def _note_wakes(bell: Doorbell, answer: Doorbell, woke: Any, rings: int) -> None:
    """Child process: wait on the bell like a writer; note when each ring woke it."""
    answer.ring()  # started: the rings from here on are timed
    for index in range(rings):
        if not bell.wait(5.0):
            return
        woke[index] = time.monotonic_ns()
        answer.ring()


def bench_wake(rings: int = 150, fps: float = 30.0) -> dict[str, float]:
    """Ring a waiting process at fps; how long until it runs (ms, p50 / p99 / max)."""
    context = mp.get_context("spawn")
    bell, answer = Doorbell(), Doorbell()
    woke = context.Array("q", rings, lock=False)
    child = context.Process(target=_note_wakes, args=(bell, answer, woke, rings))
    child.start()
    rung = np.zeros(rings, np.int64)
    try:
        if not answer.wait(30.0):
            raise RuntimeError("the waiting process did not start")
        for index in range(rings):
            time.sleep(1 / fps)
            rung[index] = time.monotonic_ns()
            bell.ring()
            answer.wait(5.0)
        child.join(10)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        bell.close()
        answer.close()
    delays_ms = (np.array(woke[:], np.int64) - rung) / 1e6
    p50, p99 = np.percentile(delays_ms, [50, 99])
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3),
            "max_ms": round(float(delays_ms.max()), 3)}


def print_wake(row: dict[str, float]) -> None:
    print(f"\nwriter wake after a camera rings (30 Hz): p50 {row['p50_ms']}  "
          f"p99 {row['p99_ms']}  max {row['max_ms']} ms")


def wake_target(row: dict[str, float]) -> tuple[str, bool]:
    return (f"a writer wakes within {WAKE_TARGET_P99_MS} ms of a ring at p99 "
            f"({row['p99_ms']} ms)", row["p99_ms"] <= WAKE_TARGET_P99_MS)
