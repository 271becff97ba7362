"""`recorder-engine`'s conventions, as a user or a script meets them: --version, --json,
exit codes, progress bars on a terminal only, record --rig and per-camera sizes, the ctl
commands of the rig, and the engine's log (where it is, how it rotates)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from engine.cli import parse_camera, version
from engine.client import EngineClient, launch_engine
from engine.recording.manifest import read_manifest
from engine.rig import demo_rig, load_rig
from engine.service.engine_log import LOG_BACKUPS, LOG_MAX_BYTES_ENV
from engine.service.rig_service import CommandError, RigService
from engine.wire.paths import LOG_DIR_ENV, LOG_NAME, RUNTIME_DIR_ENV, STATE_DIR_ENV, log_path
from tests.conftest import free_port
from tests.engines import Engine, short_folder
from tests.test_finalize import make_recording as make_crashed_take
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

ENGINE = [sys.executable, "-m", "engine"]
ROOT = Path(__file__).resolve().parent.parent
RECORD_KEYS = {"folder", "name", "status", "cameras", "sync", "errors"}


def run_engine(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
               timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*ENGINE, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def run_with_terminal_stderr(*args: str, timeout: float = 90) -> tuple[int, str, str]:
    """Run the CLI with its stderr on a pseudo-terminal (80 columns) and its stdout on a
    pipe; return its exit code, stdout and what the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen([*ENGINE, *args], stdout=subprocess.PIPE, stderr=slave,
                               stdin=subprocess.DEVNULL, cwd=ROOT)
    os.close(slave)
    terminal = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
    return process.returncode, stdout, terminal.decode(errors="replace")


# --- version, usage, failures -------------------------------------------------------------


def test_version_is_the_installed_packages():
    result = run_engine("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"recorder-engine {version()}"
    assert version()[0].isdigit()


def test_a_wrong_command_line_exits_2_with_the_usage():
    for args in (["record", "--demo", "2"],  # no --seconds
                 ["record", "--demo", "2", "--seconds", "1", "--size", "big"],
                 ["ctl", "set", "cam0", "brightness"]):  # KEY=VALUE, checked after argparse
        result = run_engine(*args, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert "error:" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("source", ["rtsp://127.0.0.1:{port}/x", "/dev/video99"])
def test_a_camera_that_cannot_be_opened_exits_1_naming_it(tmp_path, source):
    source = source.format(port=free_port())
    result = run_engine("record", "--camera", source, "--seconds", "1",
                        "--output", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "cam0" in result.stderr and source in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_exit_codes():
    result = run_engine("--help", timeout=30)
    assert result.returncode == 0
    assert "exit codes:" in result.stdout and "the command line is wrong" in result.stdout


# --- --json ---------------------------------------------------------------------------------


def test_record_verify_and_recover_answer_in_json(tmp_path):
    recorded = run_engine("record", "--demo", "2", "--seconds", "1", "--size", "256x192",
                          "--output", str(tmp_path), "--name", "take", "--json")
    assert recorded.returncode == 0, recorded.stderr
    summary = json.loads(recorded.stdout)  # stdout is the JSON document and nothing else
    assert set(summary) == RECORD_KEYS
    take = Path(summary["folder"])
    assert take == tmp_path / "take" and summary["status"] == "finalized"
    manifest = read_manifest(take)
    assert summary["cameras"] == [{"id": c["id"], "frames": c["frames"], "dropped": c["dropped"]}
                                  for c in manifest["cameras"]]
    assert summary["cameras"][0]["frames"] > 0
    assert {"p50_ms", "p99_ms", "max_ms", "frame_sets"} <= set(summary["sync"])
    assert f"recording 2 camera(s) to {take}" in recorded.stderr

    verified = run_engine("verify", str(take), "--json")
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["recording"] == str(take)
    assert {camera: info["frames_decoded"] for camera, info in report["cameras"].items()} == {
        c["id"]: c["frames"] for c in manifest["cameras"]}
    assert report["sync"]["frame_sets"] == summary["sync"]["frame_sets"]

    crashed = make_crashed_take(tmp_path / "crashed", [60, 60, 50], killed=(1,))
    recovered = run_engine("recover", str(tmp_path), "--json")
    assert recovered.returncode == 0, recovered.stderr
    [result] = json.loads(recovered.stdout)
    assert result["folder"] == str(crashed)
    assert result["status"] == "recovered" and result["frames"] == 50
    assert result["frames_dropped"] == {"cam0": 10, "cam1": 10, "cam2": 0}


def test_a_failed_verify_and_a_failed_recover_exit_1(tmp_path):
    hopeless = make_crashed_take(tmp_path / "hopeless", [20, 20])
    for video in hopeless.glob("*.mkv"):
        video.write_bytes(bytes(range(256)) * 40)
    recovered = run_engine("recover", str(tmp_path), "--json")
    assert recovered.returncode == 1
    [result] = json.loads(recovered.stdout)
    assert "nothing recoverable" in result["error"]
    verified = run_engine("verify", str(hopeless), "--json")
    assert verified.returncode == 1
    assert json.loads(verified.stdout)["ok"] is False


# --- progress ------------------------------------------------------------------------------


def test_a_recovery_draws_a_progress_bar_on_a_terminal_only(tmp_path):
    make_crashed_take(tmp_path / "one", [300, 300, 280], killed=(1,))
    make_crashed_take(tmp_path / "two", [300, 300], killed=(0,))
    code, stdout, terminal = run_with_terminal_stderr("recover", str(tmp_path))
    assert code == 0, terminal
    assert "recovering:" in terminal and "100%|" in terminal, terminal
    assert "recovered, 280 frames per camera" in stdout  # the bar never touches stdout
    assert "%|" not in stdout

    three = make_crashed_take(tmp_path / "three", [300, 300], killed=(0,))
    piped = run_engine("recover", str(tmp_path))
    assert piped.returncode == 0
    assert f"{three}: recovered," in piped.stdout
    assert piped.stderr == ""


def test_verify_and_the_end_of_a_recording_draw_bars_on_a_terminal(tmp_path):
    code, stdout, terminal = run_with_terminal_stderr(
        "record", "--demo", "2", "--size", "256x192", "--seconds", "1",
        "--output", str(tmp_path), "--name", "take")
    assert code == 0, terminal
    assert "finishing the files:" in terminal and "100%|" in terminal, terminal
    assert "status: finalized" in stdout
    code, stdout, terminal = run_with_terminal_stderr("verify", str(tmp_path / "take"))
    assert code == 0, stdout
    assert "verifying:" in terminal and "100%|" in terminal, terminal
    piped = run_engine("verify", str(tmp_path / "take"))
    assert piped.returncode == 0 and piped.stderr == ""


# --- record --rig and per-camera sizes ---------------------------------------------------------


def test_each_camera_may_have_a_size_of_its_own(tmp_path):
    assert parse_camera("rtsp://user:pw@10.0.0.5/stream") == ("rtsp://user:pw@10.0.0.5/stream",
                                                              None)
    assert parse_camera("rtsp://user:pw@10.0.0.5/s@640x480") == ("rtsp://user:pw@10.0.0.5/s",
                                                                 (640, 480))
    result = run_engine("record", "--camera", "synthetic@320x240", "--camera", "synthetic",
                        "--size", "256x192", "--seconds", "1", "--output", str(tmp_path),
                        "--name", "sizes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(run_engine("verify", str(tmp_path / "sizes"), "--json").stdout)
    assert report["ok"], report["problems"]
    assert [(c["width"], c["height"]) for c in report["cameras"].values()] == [(320, 240),
                                                                            (256, 192)]


RIG = """
name = "bench rig"

[recording]
output = "rig-output"
codec = "mjpeg"
sync_tolerance_ms = 50.0

[[cameras]]
id = "wide"
source = "synthetic"
width = 320
height = 240

[[cameras]]
id = "small"
source = "synthetic"
width = 256
height = 192
"""


def test_record_takes_a_rigs_cameras_and_options_unless_told_otherwise(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG)
    result = run_engine("record", "--rig", str(rig), "--seconds", "1", "--name", "rigged",
                        "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    take = tmp_path / "rig-output" / "rigged"  # relative to the rig file's folder
    assert summary["folder"] == str(take)
    assert [camera["id"] for camera in summary["cameras"]] == ["wide", "small"]
    assert summary["sync"]["tolerance_ms"] == 50.0
    report = json.loads(run_engine("verify", str(take), "--json").stdout)
    assert report["ok"], report["problems"]
    assert {(c["codec"], c["width"], c["height"]) for c in report["cameras"].values()} == {
        ("mjpeg", 320, 240), ("mjpeg", 256, 192)}

    result = run_engine("record", "--rig", str(rig), "--seconds", "1", "--name", "told",
                        "--codec", "ffv1", "--size", "256x192", "--output",
                        str(tmp_path / "elsewhere"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(run_engine("verify", str(tmp_path / "elsewhere" / "told"),
                                   "--json").stdout)
    assert {(c["codec"], c["width"], c["height"]) for c in report["cameras"].values()} == {
        ("ffv1", 256, 192)}


def test_a_bad_rig_file_is_named_and_exits_1(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(RIG.replace("width = 320", 'width = "wide"'))
    result = run_engine("record", "--rig", str(rig), "--seconds", "1", timeout=30)
    assert result.returncode == 1
    assert f"{rig}:" in result.stderr and "cameras[0].width" in result.stderr


# --- ctl: the rig's commands ----------------------------------------------------------------


def test_ctl_properties_save_rig_and_load_rig(engine, tmp_path):
    properties = engine.cli("ctl", "properties", "left")
    assert properties.returncode == 0, properties.stderr
    assert any(setting["name"] == "brightness" for setting in json.loads(properties.stdout))
    unknown = engine.cli("ctl", "properties", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr

    saved = engine.cli("ctl", "save-rig")  # into the file the engine was started with
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout) == {"path": str(engine.rig_file)}
    assert [c.camera_id for c in load_rig(engine.rig_file).cameras] == ["left", "right"]

    work = tmp_path / "work"  # a relative FILE is the caller's, not the engine's
    work.mkdir()
    copy = run_engine("ctl", "save-rig", "copy.toml", cwd=work, env=engine.env)
    assert copy.returncode == 0, copy.stderr
    one_camera = work / "copy.toml"
    text = one_camera.read_text()
    one_camera.write_text(text[:text.index("[[cameras]]", text.index('id = "left"'))])
    loaded = run_engine("ctl", "load-rig", "copy.toml", cwd=work, env=engine.env)
    assert loaded.returncode == 0, loaded.stderr
    assert [camera["id"] for camera in json.loads(loaded.stdout)["cameras"]] == ["left"]
    with engine.client() as client:
        wait_for(lambda: [c["id"] for c in client.status()["cameras"]] == ["left"], 15,
                 "the loaded rig's cameras")
        assert client.save_rig() == {"path": str(one_camera)}  # the file it was loaded from


def test_save_rig_without_a_file_needs_a_rig_that_came_from_one():
    service = RigService(demo_rig(1), lambda event: None)
    with pytest.raises(CommandError, match="name the file"):
        service.save_rig()


# --- the engine's log ---------------------------------------------------------------------------


def test_the_engine_logs_to_the_users_log_folder_not_the_runtime_folder(tmp_path, monkeypatch):
    run = short_folder()  # XDG_RUNTIME_DIR: short, the socket's path must fit
    for name in (RUNTIME_DIR_ENV, STATE_DIR_ENV, LOG_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    expected = tmp_path / "state" / "recorder-workstation" / "log" / LOG_NAME
    assert log_path() == expected
    folder = run / "recorder-workstation"
    folder.mkdir(mode=0o700)
    process = launch_engine(folder, ["--demo", "2"])
    try:
        with EngineClient.await_engine(process, folder) as client:
            assert client.status()["engine"]["log"] == str(expected)
            frames = client.status()["cameras"][0]["frames"]
            lines = len(expected.read_text().splitlines())
            wait_for(lambda: client.status()["cameras"][0]["frames"] >= frames + 90, 15,
                     "90 frames more")
            # Never a line a frame (2 x 90 here), only the start's last changes at most.
            assert len(expected.read_text().splitlines()) - lines <= 10
        status = run_engine("status", timeout=30)
        assert f"log {expected}" in status.stdout, status.stderr
        answer = run_engine("status", "--json", timeout=30)
        assert json.loads(answer.stdout)["engine"]["log"] == str(expected)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(run, ignore_errors=True)
    text = expected.read_text()
    assert "serving rig 'demo' (2 cameras)" in text
    assert "camera_status" in text  # a line per state change
    # Its output goes there too: a launched engine has no terminal.
    assert "engine.output: SIGTERM: finalizing and shutting down" in text
    assert not list(run.rglob(f"{LOG_NAME}*"))


def test_the_log_rotates_at_its_size_limit(tmp_path, monkeypatch):
    limit = 2000
    logs = tmp_path / "logs"
    monkeypatch.setenv(LOG_DIR_ENV, str(logs))
    monkeypatch.setenv(LOG_MAX_BYTES_ENV, str(limit))
    engine = Engine(tmp_path)
    try:
        with engine.client() as client:
            for _ in range(200):  # two lines each, frozen and unfrozen: 20 kB or so
                client.freeze()
                client.unfreeze()
    finally:
        engine.stop()
    files = sorted(logs.iterdir())
    assert [path.name for path in files] == [LOG_NAME] + [f"{LOG_NAME}.{n}" for n in
                                                          range(1, LOG_BACKUPS + 1)]
    for path in files:
        assert 0 < path.stat().st_size <= limit, path
    assert "unfrozen" in (logs / LOG_NAME).read_text()
