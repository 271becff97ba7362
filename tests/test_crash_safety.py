"""A recording survives anything short of the disk dying: kills, full disks, vanished folders.

Every scenario runs the real `recorder-engine` in its own process group, breaks it
for real, and then checks the outcome by decoding the files.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.ipc.ring import sweep_stale_segments
from engine.recording.manifest import read_manifest
from engine.recording.verify import verify_recording

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
FPS = 30


def start_recording(output: Path, *extra: str) -> tuple[subprocess.Popen, float]:
    """A CLI recording in a new process group; returns it and when its first frame was due."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "record", "--demo", "3", "--size", "256x192",
         "--fps", str(FPS), "--codec", "h264", "--seconds", "120",
         "--output", str(output), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "recording" in line, process.stderr.read() if process.stderr else ""
    return process, time.monotonic()


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the engine and every process it started, all at once (a power cut, as
    far as a process can tell)."""
    members = [process.pid]
    with contextlib.suppress(psutil.NoSuchProcess):  # it may have ended by itself
        members += [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    with contextlib.suppress(ProcessLookupError):  # and its whole group with it
        os.killpg(process.pid, signal.SIGKILL)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    psutil.wait_procs([p for p in map(_process_or_none, members) if p], timeout=10)
    # The resource tracker died with the group, so nothing unlinked the rings: the
    # sweep every engine runs at start-up removes them (tests/test_ring.py tests it).
    sweep_stale_segments()
    assert not list(Path("/dev/shm").glob(f"rw{process.pid}_*"))
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


def _process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def recover(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", "recover", str(folder)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def the_recording(output: Path) -> Path:
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


# Two kill moments here, two more in .ci/run's slow step (5 s each).
@pytest.mark.parametrize("seed", [0, 1, *(pytest.param(seed, marks=pytest.mark.slow)
                                          for seed in (2, 3))])
def test_sigkill_of_the_whole_engine_then_recovery_loses_at_most_a_second(tmp_path, seed):
    """Killed at a random moment: mid-frame, mid-fsync, whatever."""
    kill_after = random.Random(seed).uniform(0.7, 3.7)
    process, started = start_recording(tmp_path)
    time.sleep(kill_after)
    killed_at = time.monotonic()
    kill_tree(process)
    folder = the_recording(tmp_path)
    assert read_manifest(folder)["status"] == "recording"

    result = recover(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = read_manifest(folder)
    assert manifest["status"] == "recovered"
    report = verify_recording(folder)
    assert report.ok, report.summary()
    frames = {camera["frames"] for camera in manifest["cameras"]}
    assert len(frames) == 1
    expected = (killed_at - started) * FPS
    assert frames.pop() >= expected - FPS - 3, f"lost more than 1 s of {expected:.0f} frames"
    assert_only_the_take(folder)


def assert_only_the_take(folder: Path) -> None:
    """A final folder holds the take and nothing else (no lock, no temporary file)."""
    names = {path.relative_to(folder).as_posix() for path in folder.rglob("*")}
    cameras = [camera["id"] for camera in read_manifest(folder)["cameras"]]
    assert names == {"recording.json", "sync_report.json", "README.txt", "timestamps",
                     *(f"{camera}.mkv" for camera in cameras),
                     *(f"timestamps/{camera}.csv" for camera in cameras)}


def test_sigterm_loses_nothing_and_leaves_only_the_take(tmp_path):
    process, started = start_recording(tmp_path)
    time.sleep(2.5)
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    folder = the_recording(tmp_path)
    manifest = read_manifest(folder)
    assert manifest["status"] == "finalized"
    frames = manifest["cameras"][0]["frames"]
    assert abs(frames - (stopped_at - started) * FPS) <= 6
    assert verify_recording(folder).ok
    assert_only_the_take(folder)


def test_sigkill_during_recovery_is_harmless(tmp_path):
    """Recovery killed part-way and run again: the result is as good as one clean run."""
    process, _ = start_recording(tmp_path, "--size", "640x480")
    time.sleep(3.0)
    kill_tree(process)
    folder = the_recording(tmp_path)
    interrupted = subprocess.Popen([sys.executable, "-m", "engine", "recover", str(tmp_path)],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(7).uniform(0.2, 0.8))
    interrupted.kill()
    interrupted.wait()
    result = recover(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = read_manifest(folder)
    assert manifest["status"] == "recovered"
    assert verify_recording(folder).ok
    assert manifest["cameras"][0]["frames"] >= 2 * FPS


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def test_a_full_disk_ends_with_final_files_on_the_full_disk(tmp_path):
    small = tmp_path / "small"
    if not mount_tmpfs(small, "4m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        process = subprocess.run(
            [sys.executable, "-m", "engine", "record", "--demo", "3", "--size", "640x480",
             "--codec", "mjpeg", "--seconds", "60",
             "--disk-stop-below-gb", "0",  # the writers' own disk-full path, no guard
             "--output", str(small)],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )
        assert process.returncode == 1
        assert "disk is full" in process.stdout + process.stderr
        # Final on the full disk itself, no `recover` needed: nothing was copied, and the
        # room for the index and manifest was set aside when the take started.
        folder = the_recording(small)
        manifest = read_manifest(folder)
        assert manifest["status"] == "interrupted"
        report = verify_recording(folder)
        assert report.ok, report.summary()
        assert manifest["cameras"][0]["frames"] > 10
        assert_only_the_take(folder)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_the_recording_folder_removed_mid_recording_is_a_clear_error(tmp_path):
    process, _ = start_recording(tmp_path)
    time.sleep(1.5)
    shutil.rmtree(the_recording(tmp_path))
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_tree(process)
        raise
    assert process.returncode != 0
    assert "Traceback" not in err
    assert "No such file or directory" in out + err


def test_recover_leaves_a_recording_in_progress_alone(tmp_path):
    process, _ = start_recording(tmp_path)
    try:
        time.sleep(1.5)
        result = recover(tmp_path)
        assert result.returncode == 0
        assert "nothing to recover" in result.stdout
        assert read_manifest(the_recording(tmp_path))["status"] == "recording"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_tree(process)
    assert process.returncode == 0
    manifest = read_manifest(the_recording(tmp_path))
    assert manifest["status"] == "finalized"
    assert verify_recording(the_recording(tmp_path)).ok
