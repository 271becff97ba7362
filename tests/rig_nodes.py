"""A rig of several machines on this one: a real NATS server on 127.0.0.1 with a token,
engines serving as its nodes (each with its own runtime, state and output folders, and
a clock shifted as another machine's would be), and the `recorder-engine rig` CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from engine.machine_clock import CLOCK_OFFSET_ENV
from engine.wire.paths import LOG_DIR_ENV
from tests.conftest import free_port, missing_requirement
from tests.engines import RIG, ROOT, Engine
from tests.waiting import wait_for

TOKEN = "rig-secret-token"
RIG_ID = "testrig"
MS = 1_000_000


class Broker:
    """nats-server on 127.0.0.1 with token authentication."""

    def __init__(self, port: int | None = None) -> None:
        executable = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
        if executable is None:
            missing_requirement("nats-server", "Debian's nats-server")
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [executable, "-a", "127.0.0.1", "-p", str(self.port), "--auth", TOKEN],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, 10, "nats-server to listen", step_s=0.05)

    def _listening(self) -> bool:
        assert self.process.poll() is None, "nats-server ended"
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_node(tmp_path: Path, name: str, broker_url: str, offset_ns: int = 0,
               rig_text: str = RIG, runtime: Path | None = None) -> Engine:
    """An engine serving as node `name`, its folders under tmp_path/name; `runtime`: the
    runtime folder of an earlier engine of this node (a restart)."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    return Engine(folder, rig_text, folder=runtime,
                  serve_args=("--node", name, "--broker", broker_url, "--rig-id", RIG_ID),
                  env={"RECORDER_BROKER_TOKEN": TOKEN, CLOCK_OFFSET_ENV: str(offset_ns),
                       LOG_DIR_ENV: str(folder / "log")})


def rig_command(*args: str, token: str = TOKEN) -> list[str]:
    """The argv of `recorder-engine rig ARGS` for this rig; run it with rig_env()."""
    action, *rest = args  # the rig id before the rest: `rig ctl` ends with a command
    return [sys.executable, "-m", "engine", "rig", action, "--rig-id", RIG_ID, *rest]


def rig_env(token: str = TOKEN) -> dict[str, str]:
    return {**os.environ, "RECORDER_BROKER_TOKEN": token}


def run_rig(*args: str, token: str = TOKEN, timeout_s: float = 60
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(rig_command(*args), env=rig_env(token), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)
