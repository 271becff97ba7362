"""`--self-test`: prove on any machine, without a display, that this install records.

It starts an engine of its own, exactly as the GUI does (so in the bundle from the frozen
executable), on a demo rig in a private runtime folder, records a few seconds into a
temporary folder, verifies every file and shuts the engine down. It also checks that the
engine and every process it spawned run this program's executable: a bundle that fell back
to a system Python would pass everything else. Qt is never imported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import psutil

from engine.client import EngineClient, EngineCommandError, EngineNotRunning, launch_engine
from engine.recording.verify import verify_recording
from engine.wire.paths import log_path

DEMO_CAMERAS = 2
RECORD_SECONDS = 3.0
SHUTDOWN_TIMEOUT_S = 30.0


def _say(text: str) -> None:
    print(f"self-test: {text}", flush=True)


def tree_executables(engine_pid: int) -> dict[int, str]:
    """pid -> resolved executable of the engine and of every process it spawned."""
    engine = psutil.Process(engine_pid)
    found = {}
    for process in [engine, *engine.children(recursive=True)]:
        try:
            found[process.pid] = os.path.realpath(process.exe())
        except psutil.NoSuchProcess:
            continue
    return found


def _record_and_verify(client: EngineClient, engine_pid: int, output: Path) -> bool:
    started = client.record(output=str(output), name="self-test")
    _say(f"recording {DEMO_CAMERAS} demo cameras for {RECORD_SECONDS:.0f} s")
    time.sleep(RECORD_SECONDS)
    ours = os.path.realpath(sys.executable)
    executables = tree_executables(engine_pid)
    foreign = {pid: exe for pid, exe in executables.items() if exe != ours}
    stopped = client.stop(wait=True)
    if foreign:
        _say(f"processes not started from {ours}: {foreign}")
    else:
        _say(f"{len(executables)} engine processes, all running {ours}")
    report = verify_recording(Path(started["folder"]))
    print(report.summary(), flush=True)
    frames = set(stopped["frames"].values())
    return (not foreign and stopped["status"] == "finalized" and report.ok
            and len(frames) == 1 and frames.pop() > 0)


def _end_engine(client: EngineClient | None, process: subprocess.Popen) -> None:
    """Shut the engine down (it finalizes and frees its shared memory); kill it if it hangs."""
    if client is not None:
        with contextlib.suppress(EngineNotRunning, EngineCommandError):  # gone or hung
            client.shutdown()
        client.close()
    try:
        process.wait(SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _say("the engine did not shut down; killing it")
        os.killpg(process.pid, signal.SIGKILL)  # it leads its own session
        process.wait()


def _log_end() -> tuple[int, int]:
    """Where the engine's log ends now: its file's inode and size ((0, 0): none yet)."""
    with contextlib.suppress(FileNotFoundError):
        found = log_path().stat()
        return found.st_ino, found.st_size
    return 0, 0


def _log_since(end: tuple[int, int]) -> str:
    """What the engine's log gained after `end` (all of the file if it was rotated since)."""
    inode, size = end
    with log_path().open("rb") as log:
        log.seek(size if os.fstat(log.fileno()).st_ino == inode else 0)
        return log.read().decode(errors="replace")


def run_self_test() -> bool:
    """Record the demo rig briefly with a private engine; True only if the recording holds."""
    runtime = Path(tempfile.mkdtemp(prefix="rw-self-", dir="/tmp"))  # short: a socket path
    output = Path(tempfile.mkdtemp(prefix="recorder-self-test-"))
    client = None
    ok = False
    log_start = _log_end()
    process = launch_engine(runtime, ["--demo", str(DEMO_CAMERAS)])
    try:
        client = EngineClient.await_engine(process, runtime)
        _say(f"engine pid {process.pid} answers on {runtime}")
        ok = _record_and_verify(client, process.pid, output)
    except Exception:  # any failure is the test's result: reported, then FAILED
        traceback.print_exc()
    finally:
        _end_engine(client, process)
        if not ok and log_path().exists():
            _say(f"engine log ({log_path()}), this engine's lines:\n{_log_since(log_start)}")
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)
    _say("PASSED" if ok else "FAILED")
    return ok
