"""A real `recorder-engine serve` process for tests, on a private runtime folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine.client import EngineClient, EngineNotRunning
from engine.wire.paths import RUNTIME_DIR_ENV
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


RIG = """
name = "test rig"

[recording]
output = "{output}"
codec = "mjpeg"

[[cameras]]
id = "left"
source = "synthetic"
width = 256
height = 192
fps = 30.0

[[cameras]]
id = "right"
source = "synthetic"
width = 256
height = 192
fps = 30.0
"""


def short_folder() -> Path:
    """A runtime folder with a short path (Unix socket paths are limited to ~100 bytes)."""
    return Path(tempfile.mkdtemp(prefix="rw-", dir="/tmp"))


class Engine:
    """A `recorder-engine serve` process on a private runtime folder."""

    def __init__(self, tmp_path: Path, rig_text: str = RIG, folder: Path | None = None,
                 serve_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """`folder`: the runtime folder (and state database) of an earlier engine;
        `serve_args` and `env`: more arguments for `serve`, more environment."""
        self.folder = folder or short_folder()
        self.output = tmp_path / "recordings"
        self.rig_file = tmp_path / "rig.toml"
        self.rig_file.write_text(rig_text.format(output=self.output))
        self.env = {**os.environ, RUNTIME_DIR_ENV: str(self.folder), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--rig", str(self.rig_file), *serve_args],
            env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        wait_for(self._answers, 30, "the engine answering", step_s=0.1)

    def _answers(self) -> bool:
        """Whether the engine takes a connection; its output if it died instead."""
        try:
            self.client().close()
        except EngineNotRunning:
            assert self.process.poll() is None, self.process.communicate()[0]
            return False
        return True

    def client(self) -> EngineClient:
        return EngineClient.connect(self.folder, timeout_s=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    def stop(self, *, keep_folder: bool = False) -> None:
        pid = self.process.pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

        def segments() -> list[Path]:
            return list(Path("/dev/shm").glob(f"rw{pid}_*"))

        with contextlib.suppress(AssertionError):  # whatever is left is removed and named below
            wait_for(lambda: not segments(), 5, "the engine's shared memory to go", step_s=0.1)
        leftovers = segments()
        for segment in leftovers:
            segment.unlink(missing_ok=True)
        if not keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        assert not leftovers, f"the engine left shared memory behind: {leftovers}"


@pytest.fixture
def engine(tmp_path):
    running = Engine(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def link(engine, qtbot):
    """The GUI's link to a running engine (Qt is imported only by tests that ask for it)."""
    from recorder_gui.engine_link import EngineLink

    link = EngineLink(engine.client())
    try:
        yield link
    finally:
        link.close()  # its queued events must not reach this test's closed widgets later
