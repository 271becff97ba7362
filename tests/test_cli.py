"""`recorder-engine` as a user runs it: real subprocesses, real signals, real files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.cli import build_parser, ctl_command, format_summary
from engine.recording.manifest import read_manifest
from engine.recording.verify import verify_recording
from engine.wire.commands import (
    COMMANDS,
    AddCamera,
    Export,
    Record,
    Set,
    Shutdown,
    Stop,
    StopCamera,
)
from tests.test_recording_files import OUT_OF_SYNC, make_out_of_sync_recording, make_recording

pytestmark = pytest.mark.timeout(120)

ENGINE = [sys.executable, "-m", "engine"]
ROOT = Path(__file__).resolve().parent.parent


def run_engine(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ENGINE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def only_recording(output: Path) -> Path:
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def test_record_prints_a_summary_and_the_recording_verifies(tmp_path):
    result = run_engine(
        "record", "--demo", "2", "--size", "320x240", "--fps", "30", "--codec", "mjpeg",
        "--seconds", "1.5", "--output", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "status: finalized" in result.stdout
    assert "capture spread ms" in result.stdout
    assert "tolerance 33.333: " in result.stdout  # one frame period at 30 fps
    folder = only_recording(tmp_path)
    assert str(folder) in result.stdout
    verified = run_engine("verify", str(folder))
    assert verified.returncode == 0, verified.stdout
    manifest = read_manifest(folder)
    assert [c["frames"] for c in manifest["cameras"]] == [manifest["cameras"][0]["frames"]] * 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_recording_stops_cleanly_and_finalizes(tmp_path, signum):
    process = subprocess.Popen(
        [*ENGINE, "record", "--demo", "3", "--size", "256x192", "--seconds", "60",
         "--output", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert "recording 3 camera(s)" in first_line, process.stderr.read()
        time.sleep(1.0)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "status: finalized" in out
    assert signal.Signals(signum).name in err
    report = verify_recording(only_recording(tmp_path))
    assert report.ok, report.summary()
    assert report.cameras["cam0"]["frames_decoded"] >= 20
    psutil.wait_procs(children, timeout=5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "bogus-camera"], "unknown camera source 'bogus-camera'"),
        (["--camera", "/dev/video97"], "/dev/video97"),
        (["--camera", "/no/such/file.mp4"], "video file not found: /no/such/file.mp4"),
        (["--demo", "1", "--size", "641x480"], "width"),
        (["--demo", "1", "--fps", "0"], "fps"),
        (["--demo", "1", "--size", "big"], "size must look like 1280x720"),
    ],
)
def test_bad_input_names_the_problem_and_exits_non_zero(tmp_path, args, message):
    result = run_engine("record", *args, "--seconds", "1", "--output", str(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_folder_is_named(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    result = run_engine("record", "--demo", "1", "--seconds", "1", "--output", str(blocker / "sub"))
    assert result.returncode == 1
    assert f"output folder {blocker / 'sub'} is not writable" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_fails_with_a_report_on_a_damaged_recording(tmp_path):
    assert run_engine(
        "record", "--demo", "2", "--size", "256x192", "--seconds", "1", "--output", str(tmp_path)
    ).returncode == 0
    folder = only_recording(tmp_path)
    video = folder / "cam1.mkv"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    result = run_engine("verify", str(folder))
    assert result.returncode == 1
    assert "cam1" in result.stdout


def test_the_record_summary_says_whether_the_sync_tolerance_held():
    manifest = {"name": "take", "status": "finalized", "cameras": [
        {"id": "a", "frames": 12, "dropped": 0}, {"id": "b", "frames": 12, "dropped": 0}]}
    spread = {"frame_sets": 12, "p50_ms": 1000.25, "p99_ms": 1000.25, "max_ms": 1000.25,
              "tolerance_ms": 33.333, "over_tolerance": 12}
    assert format_summary(manifest | {"sync": spread}).splitlines()[-1] == (
        "capture spread ms  p50 1000.250  p99 1000.250  max 1000.250  (12 frame sets)  "
        "tolerance 33.333: NOT held: 12 frame sets over")
    in_sync = spread | {"p50_ms": 0.25, "p99_ms": 0.25, "max_ms": 0.25, "over_tolerance": 0}
    assert format_summary(manifest | {"sync": in_sync}).endswith("tolerance 33.333: held")


def test_verify_fails_a_recording_out_of_sync_unless_told_a_wider_tolerance(tmp_path):
    make_out_of_sync_recording(tmp_path / "late")
    result = run_engine("verify", str(tmp_path / "late"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PROBLEMS FOUND" in result.stdout and OUT_OF_SYNC in result.stdout
    wider = run_engine("verify", "--sync-tolerance-ms", "2000", str(tmp_path / "late"))
    assert wider.returncode == 0, wider.stdout
    assert "tolerance 2000.0 ms (0 frame sets over)" in wider.stdout
    make_recording(tmp_path / "in-sync")
    assert run_engine("verify", str(tmp_path / "in-sync")).returncode == 0
    refused = run_engine("verify", "--sync-tolerance-ms", "0", str(tmp_path / "late"))
    assert refused.returncode == 2
    assert "must be a positive number of ms, not '0'" in refused.stderr


def test_cameras_lists_the_synthetic_source():
    result = run_engine("cameras", "--json", timeout=30)
    assert result.returncode == 0
    assert any(c["source"] == "synthetic" for c in json.loads(result.stdout))


def test_engine_never_imports_qt():
    code = (
        "import sys, engine.cli, engine.capture.group, engine.bench, engine.recording.verify\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'recorder_gui')]\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stderr
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text()
        for banned in ("PySide6", "PyQt", "pyqtgraph", "recorder_gui"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, path


def test_engine_child_processes_ignore_a_terminal_ctrl_c_sent_to_the_whole_group(tmp_path):
    """Ctrl-C in a terminal signals every process of the foreground group, not just ours."""
    process = subprocess.Popen(
        [*ENGINE, "record", "--demo", "2", "--size", "256x192", "--seconds", "60",
         "--output", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err
    assert "status: finalized" in out
    assert verify_recording(only_recording(tmp_path)).ok


def test_killing_the_engine_leaves_no_process_or_shared_memory_behind(tmp_path):
    """SIGKILL of the controller: children notice within a second and exit; the
    multiprocessing resource tracker then unlinks the rings. The manifest keeps
    status "recording" so recovery can find the recording."""
    process = subprocess.Popen(
        [*ENGINE, "record", "--demo", "3", "--size", "256x192", "--seconds", "60",
         "--output", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    assert process.stdout is not None
    assert "recording" in process.stdout.readline()
    time.sleep(0.5)
    children = psutil.Process(process.pid).children(recursive=True)
    segments = list(Path("/dev/shm").glob(f"rw{process.pid}_*"))
    assert len(segments) == 4  # the control block and three rings
    process.kill()
    process.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    deadline = time.monotonic() + 10
    while any(s.exists() for s in segments) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, [c.name() for c in alive]
    assert not [s for s in segments if s.exists()]
    assert read_manifest(only_recording(tmp_path))["status"] == "recording"


@pytest.mark.slow
@pytest.mark.timeout(330)
def test_bench_quick_reports_every_figure(tmp_path):
    """The benchmark itself keeps working (figures are for the closing note, not asserted).
    About 2.5 minutes (the writer's cost alone takes one: each case is two takes between
    three bare encoder runs): each figure has its own quick test (test_bench.py), this
    one runs in .ci/run's slow step."""
    out = tmp_path / "bench.json"
    result = run_engine("bench", "--quick", "--record-seconds", "2", "--json", str(out),
                        timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert {"publish", "capture", "encode", "record", "record_realistic", "writer_cost",
            "encoder_choices", "targets"} <= set(figures)
    assert len(figures["capture"]) == 6  # 1, 2, 4 cameras x paced, unpaced at 640x480
    assert figures["record"]["identical_counts"] and figures["record"]["verified"]
    assert "targets" in result.stdout


@pytest.mark.parametrize("argv, command", [
    (["record", "--name", "take", "--codec", "ffv1"],
     Record(name="take", codec="ffv1")),
    (["stop", "--no-wait"], Stop(wait=False)),
    (["stop"], Stop()),
    (["add-camera", "rtsps://u:p@cam/s", "--id", "door", "--fps", "12.5",
      "--settings", "open_timeout_ms=900"],
     AddCamera(source="rtsps://u:p@cam/s", id="door", fps=12.5,
               settings={"open_timeout_ms": "900"})),
    (["set", "left", "brightness=10", "width=320"],
     Set(camera="left", changes={"brightness": "10", "width": "320"})),
    (["stop-camera", "left"], StopCamera(camera="left")),
    (["export", "/r/take", "nwb"], Export(folder="/r/take", to="nwb")),
    (["export", "/r/take", "mkv", "--output", "/x/take.mkv"],
     Export(folder="/r/take", to="mkv", output="/x/take.mkv")),
    (["shutdown"], Shutdown()),
])
def test_ctl_sub_commands_come_from_the_command_registry(argv, command):
    assert ctl_command(build_parser().parse_args(["ctl", *argv])) == command


def test_ctl_offers_every_command_but_subscribe(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ctl", "--help"])
    listed = capsys.readouterr().out
    for name in COMMANDS.names():
        assert (name.replace("_", "-") in listed) == (name != "subscribe"), name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ctl", "record", "--codec", "gif"])



def test_a_camera_that_will_not_open_is_named_once(tmp_path):
    """The reason used to read "cam0: cam0: cannot open network camera ...": the camera
    process named itself and the controller named it again."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = run_engine("record", "--camera", f"rtsp://127.0.0.1:{port}/x", "--seconds", "1",
                        "--output", str(tmp_path))
    assert result.returncode != 0
    assert "cam0: cannot open network camera rtsp://127.0.0.1:" in result.stderr, result.stderr
    assert "cam0: cam0" not in result.stderr
