"""`recorder-engine bench`: the engine's speed figures, measured in one run.

Figures are reported against references measured in the same run on the same
machine (a plain numpy copy of the same frame), because shared machines are
too noisy for absolute targets. One module (over 400 lines) because every figure is
measured the same way and reported in one table; each figure is a function of its own.
The network-camera figure needs servers and a reference process of its own, so it lives
in network_camera.py.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from engine.bench.network_camera import (
    bench_network_camera,
    network_camera_targets,
    print_network_camera,
)
from engine.bench.rig_broker import bench_rig, print_rig, rig_targets
from engine.bench.stamped_sync import (
    bench_stamped_sync,
    print_stamped_sync,
    stamped_sync_targets,
)
from engine.bench.writer_cost import (
    bench_wake,
    bench_writer_cost,
    encoder_choices,
    print_encoder_choices,
    print_wake,
    print_writer_cost,
    wake_target,
    writer_cost_targets,
)
from engine.capture.group import CaptureGroup
from engine.capture.stats import SpreadWindow, spread_summary
from engine.ipc.ring import FLAG_RECORD, FrameRing
from engine.recording.encoder import CODECS, encode_throughput
from engine.sources.synthetic import SyntheticSource
from engine.specs import CameraSpec

SIZES = ((640, 480), (1280, 720), (1920, 1080))
CAMERA_COUNTS = (1, 2, 4)
WARM_UP_S = 0.5

PUBLISH_TARGET_RATIO = 1.5
UNPACED_TARGET_SETS = 500.0
RECORD_TARGET_P99_MS = 2.0


def _median_ns(action, repeats: int) -> float:
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter_ns()
        action(i)
        samples[i] = time.perf_counter_ns() - start
    return float(np.median(samples))


def bench_publish(width: int, height: int, repeats: int) -> dict[str, Any]:
    """Cost of publishing a frame into the ring and of the synthetic retrieve, vs np.copyto.

    The reference copies the same frame into as many private buffers as the ring has
    slots, so both sides touch the same amount of memory: at 1080p four slots exceed
    the CPU caches, and a copy into one warm buffer would compare cache with DRAM.
    """
    shape = (height, width, 3)
    frame = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    n_slots = 4
    plain = [np.empty_like(frame) for _ in range(n_slots)]
    ring = FrameRing.create(n_slots, shape)
    source = SyntheticSource(0, width, height, 30.0, {"paced": False})
    source.open()

    def copy_warm(_: int) -> None:
        np.copyto(plain[0], frame)

    def copy(n: int) -> None:
        np.copyto(plain[n % n_slots], frame)

    def publish(n: int) -> None:
        np.copyto(ring.begin_write(n), frame)
        ring.end_write(n, 0, 0, 0, 0, FLAG_RECORD)

    def synthetic(n: int) -> None:
        source.retrieve(ring.begin_write(n), n)
        ring.end_write(n, 0, 0, 0, 0, FLAG_RECORD)

    try:
        actions = (copy_warm, copy, publish, synthetic)
        for action in actions:  # touch every page first
            _median_ns(action, 8)
        rounds = [[_median_ns(action, repeats) for action in actions] for _ in range(3)]
    finally:
        source.close()
        ring.close()
    warm_ns, copy_ns, publish_ns, synthetic_ns = (
        float(np.median(col)) for col in zip(*rounds, strict=True)
    )
    return {
        "size": f"{width}x{height}",
        "copy_one_buffer_us": round(warm_ns / 1e3, 1),
        "copy_us": round(copy_ns / 1e3, 1),
        "publish_us": round(publish_ns / 1e3, 1),
        "publish_ratio": round(publish_ns / copy_ns, 3),
        "synthetic_publish_us": round(synthetic_ns / 1e3, 1),
        "synthetic_publish_ratio": round(synthetic_ns / copy_ns, 3),
    }


def _sleep_to_ticks(fps: float, ticks: int, results: Any) -> None:
    """One bare process of the wake-up floor: sleep to each tick of the shared grid."""
    period = 1.0 / fps
    stamps = []
    for _ in range(ticks):
        tick = (math.floor(time.monotonic() / period) + 1) * period
        time.sleep(max(0.0, tick - time.monotonic()))
        stamps.append((round(tick / period), time.monotonic_ns()))
    results.put(stamps)


def bench_wake_floor(n_processes: int = 4, fps: float = 30.0, seconds: float = 5.0) -> dict:
    """Spread of n bare processes waking at the same ticks: what this machine allows.

    No frames, no gate: the spread any capture engine would see on top of its own.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    ticks = int(seconds * fps)
    workers = [
        ctx.Process(target=_sleep_to_ticks, args=(fps, ticks, results)) for _ in range(n_processes)
    ]
    for worker in workers:
        worker.start()
    by_tick: dict[int, list[int]] = {}
    for _ in workers:
        for tick, stamp in results.get(timeout=seconds + 30):
            by_tick.setdefault(tick, []).append(stamp)
    for worker in workers:
        worker.join()
    spreads = np.array(
        [(max(s) - min(s)) / 1e6 for s in by_tick.values() if len(s) == n_processes]
    )
    return {"processes": n_processes, **spread_summary(spreads)}


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    seconds = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
            seconds[name] = times.user + times.system
        except psutil.NoSuchProcess:
            seconds[name] = 0.0
    return seconds


def bench_capture(
    n_cameras: int, width: int, height: int, paced: bool, seconds: float
) -> dict[str, Any]:
    """Run the group without recording; achieved rates, drops, spread, CPU per process."""
    specs = [
        CameraSpec(f"cam{i}", "synthetic", width, height, 30.0, {"paced": paced})
        for i in range(n_cameras)
    ]
    with CaptureGroup(specs) as group:
        time.sleep(WARM_UP_S)
        pids = group.process_ids()
        window = SpreadWindow(group)
        window.new_spreads_ms()  # from here on
        counts_before, dropped_before = group.counts(), group.snapshot()["cameras"]
        cpu_before, start = _cpu_seconds(pids), time.monotonic()
        spreads = []
        while time.monotonic() - start < seconds:
            time.sleep(0.1)
            spreads.append(window.new_spreads_ms())
        elapsed = time.monotonic() - start
        counts_after, dropped_after = group.counts(), group.snapshot()["cameras"]
        cpu_after = _cpu_seconds(pids)
    frames = [b - a for a, b in zip(counts_before, counts_after, strict=True)]
    return {
        "cameras": n_cameras,
        "size": f"{width}x{height}",
        "paced": paced,
        "fps_per_camera": [round(f / elapsed, 1) for f in frames],
        "frame_sets_per_s": round(min(frames) / elapsed, 1),
        "dropped": sum(
            b["dropped"] - a["dropped"] for a, b in zip(dropped_before, dropped_after, strict=True)
        ),
        "spread": spread_summary(np.concatenate(spreads)),
        "cpu_percent": {
            name: round(100 * (cpu_after[name] - cpu_before[name]) / elapsed, 1)
            for name in pids
            if not name.endswith("-writer")
        },
    }


def bench_record(seconds: float, n_cameras: int = 4, size: tuple[int, int] = (1280, 720),
                 content: str = "realistic") -> dict:
    """The headline case: record n synthetic cameras to H.264, then verify the files."""
    from engine.recording.verify import verify_recording

    width, height = size
    specs = [CameraSpec(f"cam{i}", "synthetic", width, height, 30.0, {"content": content})
             for i in range(n_cameras)]
    with tempfile.TemporaryDirectory() as output:
        with CaptureGroup(specs) as group:
            pids = group.process_ids() | {"controller": os.getpid()}  # its threads too
            cpu_before, start = _cpu_seconds(pids), time.monotonic()
            recording = group.start_recording(Path(output), "h264")
            time.sleep(seconds)
            group.stop_recording()
            elapsed = time.monotonic() - start
            cpu_after = _cpu_seconds(pids)
        report = verify_recording(recording.folder)
        manifest = recording.manifest
    frames = [camera["frames"] for camera in manifest["cameras"]]
    return {
        "case": f"{n_cameras} x {width}x{height} @ 30 fps, {content} content, h264, "
                f"{seconds:.0f} s",
        "fps": round(min(frames) / elapsed, 1),
        "cpu_seconds": round(sum(cpu_after[name] - cpu_before[name] for name in pids), 2),
        "frames": frames,
        "identical_counts": len(set(frames)) == 1,
        "dropped": sum(camera["dropped"] for camera in manifest["cameras"]),
        "sync": manifest["sync"],
        "verified": report.ok,
        "problems": report.problems[:5],
        "cpu_percent": {
            name: round(100 * (cpu_after[name] - cpu_before[name]) / elapsed, 1) for name in pids
        },
    }


def bench_service(seconds: float) -> dict[str, Any]:
    """Command round trip through the control socket, and whether an event subscriber costs
    the cameras anything: camera CPU over `seconds` without, then with, a subscriber. Then
    the supervisor: a camera process SIGKILLed until its status is running again."""
    import shutil
    import signal
    import subprocess

    from engine.client import EngineClient, engine_command
    from engine.wire.paths import RUNTIME_DIR_ENV

    folder = Path(tempfile.mkdtemp(prefix="rw-bench-", dir="/tmp"))
    engine = subprocess.Popen(
        engine_command("serve", "--demo", "4"),
        env={**os.environ, RUNTIME_DIR_ENV: str(folder)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = None
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = EngineClient.connect(folder)
            except ConnectionError:
                if time.monotonic() > deadline or engine.poll() is not None:
                    raise
                time.sleep(0.1)
        with client:
            round_trips = np.array([_timed(client.ping) for _ in range(500)]) * 1e3
            cameras = {c["id"]: c["pid"] for c in client.status()["cameras"]}
            cpu_idle = _camera_cpu(cameras, seconds)
            with EngineClient.connect(folder) as listener:
                listener.subscribe(lambda event: None)
                cpu_subscribed = _camera_cpu(cameras, seconds)
            restart_s = _restart_time(client, "cam1", signal.SIGKILL)
            client.shutdown()
        engine.wait(30)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "round_trip_p50_ms": round(float(np.percentile(round_trips, 50)), 3),
        "round_trip_p99_ms": round(float(np.percentile(round_trips, 99)), 3),
        "camera_cpu_percent_without_client": round(cpu_idle, 2),
        "camera_cpu_percent_with_subscriber": round(cpu_subscribed, 2),
        "killed_camera_running_again_s": round(restart_s, 2),
    }


def _restart_time(client: Any, camera_id: str, how: int) -> float:
    """Seconds from killing a camera's process to the supervisor reporting it running."""

    def camera() -> dict[str, Any]:
        return next(c for c in client.status()["cameras"] if c["id"] == camera_id)

    pid = camera()["pid"]
    start = time.monotonic()
    os.kill(pid, how)
    while not ((now := camera())["status"] == "running" and now["pid"] != pid):
        if time.monotonic() - start > 30:
            raise RuntimeError(f"{camera_id} did not run again within 30 s")
        time.sleep(0.01)
    return time.monotonic() - start


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _camera_cpu(pids: dict[str, int], seconds: float) -> float:
    """Summed CPU % of the camera processes over `seconds`."""
    before, start = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    after, elapsed = _cpu_seconds(pids), time.monotonic() - start
    return 100 * sum(after[name] - before[name] for name in pids) / elapsed


def _print_tables(results: dict[str, Any]) -> None:
    print("\npublish cost (median of 3 rounds; copy = np.copyto into 4 rotating buffers)")
    print(
        f"{'size':<11}{'copy 1 buf':>11}{'copy us':>9}{'publish us':>12}{'ratio':>7}"
        f"{'synthetic us':>14}{'ratio':>7}"
    )
    for row in results["publish"]:
        print(
            f"{row['size']:<11}{row['copy_one_buffer_us']:>11}{row['copy_us']:>9}"
            f"{row['publish_us']:>12}{row['publish_ratio']:>7}"
            f"{row['synthetic_publish_us']:>14}{row['synthetic_publish_ratio']:>7}"
        )
    print("\ncapture without recording (synthetic, requested 30 fps when paced)")
    print(
        f"{'cams':<5}{'size':<11}{'paced':<7}{'sets/s':>8}{'dropped':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}  cpu % per camera"
    )
    for row in results["capture"]:
        spread = row["spread"]
        cpu = " ".join(f"{v:.0f}" for v in row["cpu_percent"].values())
        print(
            f"{row['cameras']:<5}{row['size']:<11}{row['paced']!s:<7}{row['frame_sets_per_s']:>8}"
            f"{row['dropped']:>9}{spread['p50_ms']:>8}{spread['p99_ms']:>8}{spread['max_ms']:>8}"
            f"  {cpu}"
        )
    print("\nencode throughput (frames/s, one encoder)")
    print(f"{'size':<11}" + "".join(f"{codec:>8}" for codec in CODECS))
    for row in results["encode"]:
        print(f"{row['size']:<11}" + "".join(f"{row[codec]:>8}" for codec in CODECS))
    service = results.get("service")
    if service:
        print(
            f"\ncontrol socket: round trip p50 {service['round_trip_p50_ms']} ms, "
            f"p99 {service['round_trip_p99_ms']} ms; camera CPU "
            f"{service['camera_cpu_percent_without_client']} % without a client, "
            f"{service['camera_cpu_percent_with_subscriber']} % with an event subscriber; "
            f"a SIGKILLed camera runs again after {service['killed_camera_running_again_s']} s"
        )
    floor = results["wake_floor"]
    print(
        f"\nwake-up floor: {floor['processes']} bare processes sleeping to the same 30 Hz ticks: "
        f"spread p50 {floor['p50_ms']}  p99 {floor['p99_ms']}  max {floor['max_ms']} ms"
    )
    if results.get("network_camera"):
        print_network_camera(results["network_camera"])
    if results.get("stamped_sync"):
        print_stamped_sync(results["stamped_sync"])
    if results.get("rig"):
        print_rig(results["rig"])
    if results.get("writer_cost"):
        print_writer_cost(results["writer_cost"])
    if results.get("writer_wake"):
        print_wake(results["writer_wake"])
    for key in ("record", "record_realistic"):
        record = results.get(key)
        if not record:
            continue
        print(f"\nrecording: {record['case']}")
        print(f"  frames {record['frames']} ({record['fps']} fps)  dropped {record['dropped']}  "
              f"sync {record['sync']}")
        print(f"  verified {record['verified']}  cpu % {record['cpu_percent']}")
        if "engine_over_encoders" in record:
            print(f"  whole engine: {record['cpu_seconds']} CPU-s, "
                  f"{record['engine_over_encoders']}x the sum of the bare encoders")
    if results.get("encoder_choices"):
        print_encoder_choices("1280x720", "realistic", results["encoder_choices"])
        realistic = results.get("record_realistic")
        if realistic and not _held(realistic):
            cores = results["machine"]["cpus"]
            fits = [f"{row['codec']} {row['preset']}".strip()
                    for row in results["encoder_choices"]
                    if 4 * 30 * row["ms_per_frame"] / 1000 <= 0.75 * cores]
            print(f"  4 cameras at 30 fps did not hold; on {cores} cores these would: "
                  f"{', '.join(fits) or 'none (fewer cameras, or a smaller size)'}")


def _held(record: dict[str, Any]) -> bool:
    """A take held its rate: nothing dropped, every camera the same frames, verified, and
    the frame sets came at (nearly) the 30 fps asked."""
    return (record["dropped"] == 0 and record["identical_counts"] and record["verified"]
            and record["fps"] >= 29.5)


def _targets(results: dict[str, Any]) -> list[tuple[str, bool]]:
    checks = [
        (
            f"publish <= {PUBLISH_TARGET_RATIO}x a plain copy "
            f"({row['size']}: {row['publish_ratio']}x)",
            row["publish_ratio"] <= PUBLISH_TARGET_RATIO,
        )
        for row in results["publish"]
    ]
    for row in results["capture"]:
        if row["cameras"] == 4 and not row["paced"] and row["size"] == "640x480":
            checks.append(
                (
                    f"4 unpaced 640x480 cameras >= {UNPACED_TARGET_SETS:.0f} frame sets/s "
                    f"({row['frame_sets_per_s']})",
                    row["frame_sets_per_s"] >= UNPACED_TARGET_SETS,
                )
            )
    network = results.get("network_camera")
    if network:
        checks.extend(network_camera_targets(network))
    if results.get("stamped_sync"):
        checks.extend(stamped_sync_targets(results["stamped_sync"]))
    if results.get("rig"):
        checks.extend(rig_targets(results["rig"]))
    if results.get("writer_cost"):
        checks.extend(writer_cost_targets(results["writer_cost"]))
    if results.get("writer_wake"):
        checks.append(wake_target(results["writer_wake"]))
    record = results.get("record")
    if record:
        p99 = record["sync"]["p99_ms"]
        checks.append(
            (
                f"{record['case']}: zero dropped ({record['dropped']}), identical counts, "
                f"spread p99 <= {RECORD_TARGET_P99_MS} ms ({p99})",
                record["dropped"] == 0
                and record["identical_counts"]
                and record["verified"]
                and p99 <= RECORD_TARGET_P99_MS,
            )
        )
    realistic = results.get("record_realistic")
    if realistic:
        checks.append((f"{realistic['case']}: held 30 fps, zero dropped, identical counts "
                       f"({realistic['fps']} fps, {realistic['dropped']} dropped; whole engine "
                       f"{realistic.get('engine_over_encoders')}x the bare encoders)",
                       _held(realistic)))
    return checks


def run_bench(args: argparse.Namespace) -> int:
    quick = args.quick
    sizes = SIZES[:1] if quick else SIZES
    seconds = 1.0 if quick else args.seconds
    record_seconds = min(args.record_seconds, 5.0) if quick else args.record_seconds
    network_seconds = min(args.network_seconds, 2.0) if quick else args.network_seconds
    sync_seconds = min(args.sync_seconds, 4.0) if quick else args.sync_seconds
    results: dict[str, Any] = {"machine": {"cpus": psutil.cpu_count()}}
    print("measuring publish cost ...", flush=True)
    results["publish"] = [bench_publish(w, h, 30 if quick else 200) for w, h in sizes]
    results["capture"] = []
    for n in CAMERA_COUNTS:
        for width, height in sizes:
            for paced in (True, False):
                print(
                    f"capture: {n} x {width}x{height} {'paced' if paced else 'unpaced'} ...",
                    flush=True,
                )
                results["capture"].append(bench_capture(n, width, height, paced, seconds))
    print("measuring encoders ...", flush=True)
    results["encode"] = [
        {
            "size": f"{w}x{h}",
            **{c: round(encode_throughput(c, w, h, 30 if quick else 90), 1) for c in CODECS},
        }
        for w, h in sizes
    ]
    print("measuring the control socket ...", flush=True)
    results["service"] = bench_service(seconds)
    print("measuring the wake-up floor of this machine ...", flush=True)
    results["wake_floor"] = bench_wake_floor(seconds=seconds * 2)
    if network_seconds > 0:
        print("measuring a 720p30 network camera against bare PyAV and OpenCV readers and "
              "ffmpeg -c copy ...",
              flush=True)
        results["network_camera"] = bench_network_camera(network_seconds)
    if sync_seconds > 0:
        print("recording 2 cameras on one stamped RTSP stream ...", flush=True)
        results["stamped_sync"] = bench_stamped_sync(sync_seconds)
    rig_seconds = min(args.rig_seconds, 2.0) if quick else args.rig_seconds
    if rig_seconds > 0:
        print("measuring a rig of 2 nodes on a NATS broker ...", flush=True)
        results["rig"] = bench_rig(rig_seconds)
    writer_seconds = min(args.writer_seconds, 2.0) if quick else args.writer_seconds
    if writer_seconds > 0:
        print("measuring writers against the bare encoder, clean and realistic content ...",
              flush=True)
        results["writer_cost"] = bench_writer_cost(sizes, writer_seconds)
        results["writer_wake"] = bench_wake()
    if record_seconds > 0:
        print(f"recording 4 x 1280x720 for {record_seconds:.0f} s, clean content ...",
              flush=True)
        results["record"] = bench_record(record_seconds, content="clean")
        print(f"recording 4 x 1280x720 for {record_seconds:.0f} s, realistic content ...",
              flush=True)
        realistic = results["record_realistic"] = bench_record(record_seconds)
        choices = results["encoder_choices"] = encoder_choices(1280, 720, "realistic")
        bare_ms = choices[0]["ms_per_frame"]  # h264 ultrafast: the take's encoder
        realistic["engine_over_encoders"] = round(
            1000 * realistic["cpu_seconds"] / (bare_ms * sum(realistic["frames"])), 2)
    results["targets"] = [{"check": text, "met": met} for text, met in _targets(results)]
    _print_tables(results)
    print("\ntargets")
    for target in results["targets"]:
        print(f"  [{'met' if target['met'] else 'MISSED'}] {target['check']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0
