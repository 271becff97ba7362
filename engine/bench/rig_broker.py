"""A rig of several machines, as the bench measures it: two engine nodes on a NATS broker
on this machine. A command's round trip through the broker beside the local socket's,
and one take across both nodes: how far apart their first frames were (start skew) and
their frame sets, on the coordinator's clock."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.client import EngineClient, EngineNotRunning, engine_command
from engine.nodes.broker import BrokerLink
from engine.nodes.coordinator import RigCoordinator
from engine.nodes.rig_take import RigTake
from engine.wire.commands import Ping
from engine.wire.paths import LOG_DIR_ENV, RUNTIME_DIR_ENV, STATE_DIR_ENV

ROUND_TRIPS = 300
_TOKEN = "bench-token"


def _rig_text(node: str, output: Path) -> str:
    """A node of two free-running 320x240 cameras recording MJPEG into output."""
    cameras = "".join(f"""
[[cameras]]
id = "cam{index}"
source = "synthetic"
width = 320
height = 240
fps = 30.0
settings = {{ clock = "free", jitter_ms = 1.0, seed = {index} }}
""" for index in range(2))
    return f"""name = "bench node {node}"
[recording]
output = "{output}"
codec = "mjpeg"
{cameras}"""


def _nats_server() -> str | None:
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def bench_rig(seconds: float, nodes: int = 2) -> dict[str, Any]:
    """Round trips (ROUND_TRIPS each) and one take of `seconds` across `nodes` nodes."""
    executable = _nats_server()
    if executable is None:
        return {"skipped": "nats-server is not installed (Debian: apt install nats-server)"}
    root = Path(tempfile.mkdtemp(prefix="rw-bench-rig-", dir="/tmp"))
    port = _free_port()
    url = f"nats://127.0.0.1:{port}"
    broker = subprocess.Popen([executable, "-a", "127.0.0.1", "-p", str(port), "--auth", _TOKEN],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engines: list[tuple[subprocess.Popen[bytes], Path]] = []
    link = BrokerLink(url, name="bench coordinator", token=_TOKEN)
    try:
        for index in range(nodes):
            engines.append(_start_node(root, f"n{index}", url))
        clients = [_connect(folder, process) for process, folder in engines]
        link.connect()
        coordinator = RigCoordinator(link, "bench")
        coordinator.nodes(wait_s=30, expect=nodes)
        local = [_timed(clients[0].ping) for _ in range(ROUND_TRIPS)]
        through_broker = [_timed(lambda: coordinator.command("n0", Ping()))
                          for _ in range(ROUND_TRIPS)]
        take = RigTake.start(coordinator, root / "rig-takes", seconds=seconds, expect=nodes)
        manifest = take.finish()
        for client in clients:
            with contextlib.suppress(OSError, EngineNotRunning):
                client.shutdown()
            client.close()
        sync = manifest.get("sync") or {}
        return {"nodes": nodes, "socket": _percentiles(local),
                "broker": _percentiles(through_broker), "take_status": manifest["status"],
                "start_skew_ms": sync.get("start_skew_ms"),
                "spread_p99_ms": (sync.get("spread_ms") or {}).get("p99"),
                "identical_counts": sync.get("identical_counts"),
                "frame_sets": sync.get("frame_sets")}
    finally:
        link.close()
        for process, _ in engines:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            if process.poll() is None:
                process.kill()
                process.wait()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _start_node(root: Path, node: str, url: str) -> tuple[subprocess.Popen[bytes], Path]:
    folder = root / node
    folder.mkdir()
    rig = folder / "rig.toml"
    rig.write_text(_rig_text(node, folder / "recordings"))
    runtime = Path(tempfile.mkdtemp(prefix="rw-", dir="/tmp"))  # a short socket path
    process = subprocess.Popen(
        engine_command("serve", "--rig", str(rig), "--node", node, "--broker", url,
                       "--rig-id", "bench"),
        env={**os.environ, RUNTIME_DIR_ENV: str(runtime), STATE_DIR_ENV: str(folder / "state"),
             LOG_DIR_ENV: str(folder / "log"), "RECORDER_BROKER_TOKEN": _TOKEN},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, runtime


def _connect(folder: Path, process: subprocess.Popen[bytes]) -> EngineClient:
    deadline = time.monotonic() + 60
    while True:
        try:
            return EngineClient.connect(folder)
        except EngineNotRunning:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.1)


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def print_rig(rig: dict[str, Any]) -> None:
    if "skipped" in rig:
        print(f"\nrig over a broker: skipped ({rig['skipped']})")
        return
    print(f"\nrig of {rig['nodes']} nodes over a NATS broker on this machine")
    print(f"  command round trip: broker p50 {rig['broker']['p50_ms']} ms, "
          f"p99 {rig['broker']['p99_ms']} ms; local socket p50 {rig['socket']['p50_ms']} ms, "
          f"p99 {rig['socket']['p99_ms']} ms")
    print(f"  one take ({rig['take_status']}, {rig['frame_sets']} frame sets, identical counts "
          f"{rig['identical_counts']}): start skew {rig['start_skew_ms']} ms, cross-node "
          f"spread p99 {rig['spread_p99_ms']} ms")


def rig_targets(rig: dict[str, Any]) -> list[tuple[str, bool]]:
    """The nodes' first frames within one frame period of each other (30 fps)."""
    if "skipped" in rig:
        return []
    skew = rig["start_skew_ms"]
    return [(f"a take across {rig['nodes']} nodes starts within one frame period "
             f"(start skew {skew} ms, identical counts {rig['identical_counts']})",
             skew is not None and skew < 1000 / 30 and bool(rig["identical_counts"]))]
