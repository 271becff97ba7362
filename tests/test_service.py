"""The engine as a service: a real `recorder-engine serve` process and real clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.client import EngineClient, EngineCommandError, EngineNotRunning
from engine.ipc.ring import FrameRing
from engine.recording.verify import verify_recording
from engine.rig import load_rig
from engine.sources import framecode
from engine.wire import framing
from engine.wire.events import EVENTS
from engine.wire.paths import RUNTIME_DIR_ENV, key_path, socket_path
from tests.engines import RIG, Engine, short_folder
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parent.parent

def test_status_and_rings_describe_the_running_rig(engine):
    with engine.client() as client:
        assert client.ping()["pid"] == engine.process.pid
        status = client.status()
        assert status["engine"]["state"] == "running"
        assert [c["id"] for c in status["cameras"]] == ["left", "right"]
        rings = client.rings()
        assert {r["camera"] for r in rings} == {"left", "right"}
        properties = {p["name"]: p for p in client.properties("left")}
        assert properties["brightness"]["kind"] == "int"
    ring_info = rings[0]
    ring = FrameRing.attach(ring_info["ring"], untrack=True)
    try:
        image = np.zeros(ring.shape, np.uint8)
        wait_for(lambda: ring.read_latest(image) is not None, what="a published frame")
        meta = ring.read_latest(image)
        frame_number, camera_index = framecode.read(image)
        assert frame_number == meta[1] and camera_index in (0, 1)
    finally:
        ring.close()


def test_record_pause_resume_stop_round_trip_and_events(engine):
    events = []
    with engine.client() as client:
        client.subscribe(events.append)
        started = client.record(name="take")
        assert started["folder"].endswith("take")
        time.sleep(0.5)
        assert client.pause()["state"] == "paused"
        status = client.status()
        assert status["recording"]["paused"] and not status["recording"]["frozen"]
        assert status["paused"] and not status["frozen"]
        time.sleep(0.3)
        assert client.resume()["state"] == "recording"
        time.sleep(0.5)
        stopped = client.stop()
        wait_for(lambda: any(e.NAME == "stats" for e in events), what="a stats event")
        wait_for(lambda: any(e.NAME == "recording_finalized" for e in events),
                 what="the finalized event")  # may trail the answer to stop by a moment
    assert stopped["status"] == "finalized"
    assert len(set(stopped["frames"].values())) == 1
    assert verify_recording(Path(stopped["folder"])).ok
    assert not (Path(stopped["folder"]) / ".recording.lock").exists()  # only the recording
    kinds = [e.NAME for e in events]
    for expected in ("recording_started", "paused", "resumed", "recording_finalized", "stats"):
        assert expected in kinds
    stats = next(e for e in events if e.NAME == "stats")
    assert {"id", "fps", "frames", "dropped", "status"} <= set(stats.cameras[0])


def test_pause_writes_nothing_while_the_cameras_run_and_freeze_holds_them(engine):
    """Pause is the take's: the cameras stay running (and counting) while the recorded
    frame sets and the take's clock stand still; without a take it is refused. Freeze
    holds the cameras, with or without a take, and the button's double press toggles it."""
    events = []
    with engine.client() as client:
        client.subscribe(events.append)
        for refused in (client.pause, client.resume):
            with pytest.raises(EngineCommandError, match="nothing is being recorded"):
                refused()
        assert client.freeze()["state"] == "frozen"
        status = client.status()
        assert status["frozen"] and {c["status"] for c in status["cameras"]} == {"paused"}
        assert client.unfreeze()["state"] == "running"

        client.record(name="paused-take")
        wait_for(lambda: (client.status()["recording"]["recorded_frames"] or 0) > 10, 10,
                 "frame sets recorded")
        client.pause()
        time.sleep(0.2)  # the boundary passed; the count settles
        before = client.status()
        time.sleep(1.0)
        after = client.status()
        assert after["engine"]["state"] == "paused"
        assert {c["status"] for c in after["cameras"]} == {"running"}  # live preview
        frames = {c["id"]: c["frames"] for c in after["cameras"]}
        assert all(frames[c["id"]] >= c["frames"] + 20 for c in before["cameras"])  # 30 fps
        assert after["recording"]["recorded_frames"] == before["recording"]["recorded_frames"]
        assert after["recording"]["elapsed_s"] == pytest.approx(
            before["recording"]["elapsed_s"], abs=0.15)
        paused_from = after["recording"]["segments"][-1][1]
        assert paused_from is not None
        wait_for(lambda: any(e.NAME == "stats" and e.paused for e in events), 5,
                 "a stats event of the pause")
        stats = [e for e in events if e.NAME == "stats" and e.paused]
        assert stats[-1].recorded_frames == before["recording"]["recorded_frames"]
        assert not stats[-1].frozen

        assert client.freeze()["state"] == "frozen"  # a paused take may be frozen too
        assert client.unfreeze()["state"] == "paused"
        client.resume()
        wait_for(lambda: client.status()["recording"]["recorded_frames"]
                 > before["recording"]["recorded_frames"] + 10, 10, "writing again")
        stopped = client.stop()
    kinds = [e.NAME for e in events]
    for expected in ("frozen", "unfrozen", "paused", "resumed"):
        assert expected in kinds
    paused = next(e for e in events if e.NAME == "paused")
    assert paused.frame == paused_from
    folder = Path(stopped["folder"])
    assert verify_recording(folder).ok
    manifest = json.loads((folder / "recording.json").read_text())
    (first, pause), (resume, last) = manifest["segments"]
    assert pause == paused_from and resume - pause >= 30
    assert stopped["frames"] == {"left": last - resume + pause - first,
                                 "right": last - resume + pause - first}


def test_the_buttons_double_press_toggles_the_preview_freeze(tmp_path):
    """The hardware button's double press (idle) freezes and unfreezes the preview, as it
    held the cameras before pause became a writing pause (an in-process service)."""
    from engine.service.rig_service import RigService
    from engine.system.button import Press

    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(RIG.format(output=tmp_path / "recordings"))
    service = RigService(load_rig(rig_file), lambda event: None)
    try:
        service.start()
        assert service._idle()
        service._button_pressed(Press.DOUBLE)
        assert service.status()["engine"]["state"] == "frozen"
        service._button_pressed(Press.DOUBLE)
        assert service.status()["engine"]["state"] == "running"
    finally:
        service.close()


def test_settings_apply_reject_and_recreate_rings(engine):
    events = []
    with engine.client() as client:
        client.subscribe(events.append)
        applied = client.set("left", brightness="25")
        assert applied["settings"]["brightness"] == 25
        with pytest.raises(EngineCommandError, match="brightness"):
            client.set("left", brightness=9999)
        old = {r["camera"]: r["ring"] for r in client.rings()}
        client.set("right", width=320, height=240)
        new = {r["camera"]: r for r in client.rings()}
        assert new["right"]["ring"] != old["right"] and new["right"]["width"] == 320
        wait_for(lambda: any(e.NAME == "rings_changed" for e in events), what="rings_changed")
        with pytest.raises(EngineCommandError, match="unknown camera"):
            client.set("nope", brightness=1)


def test_cameras_can_be_added_stopped_started_and_removed(engine, tmp_path):
    with engine.client() as client:
        assert client.add_camera("synthetic", id="extra", width=256, height=192)["id"] == "extra"
        assert [c["id"] for c in client.status()["cameras"]] == ["left", "right", "extra"]
        client.stop_camera("right")
        statuses = {c["id"]: c["status"] for c in client.status()["cameras"]}
        assert statuses == {"left": "running", "right": "stopped", "extra": "running"}
        assert {r["camera"] for r in client.rings()} == {"left", "extra"}
        client.start_camera("right")
        client.remove_camera("extra")
        saved = tmp_path / "saved.toml"
        client.save_rig(saved)
        assert [c.camera_id for c in load_rig(saved).cameras] == ["left", "right"]
        client.load_rig(engine.rig_file)
        assert client.status()["rig"]["name"] == "test rig"


def test_rig_changes_are_refused_while_recording(engine):
    with engine.client() as client:
        client.record()
        with pytest.raises(EngineCommandError, match="stop the recording"):
            client.add_camera("synthetic")
        client.stop()


def test_two_clients_see_the_same_engine(engine):
    seen_by_second = []
    with engine.client() as first, engine.client() as second:
        second.subscribe(seen_by_second.append)
        first.record()
        wait_for(lambda: second.status()["engine"]["state"] == "recording", what="shared state")
        first.stop()
        wait_for(lambda: any(e.NAME == "recording_finalized" for e in seen_by_second),
                 what="the second client to hear of the finalized recording")


def test_a_killed_client_changes_nothing(engine):
    """A client SIGKILLed mid-recording: the recording goes on and verifies complete."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from engine.client import EngineClient\n"
        "client = EngineClient.connect(Path(sys.argv[1]))\n"
        "client.subscribe(lambda event: None)\n"
        "print(client.record(name='orphan')['folder'], flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(engine.folder)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    folder = Path(child.stdout.readline().strip())
    time.sleep(0.5)
    child.kill()
    child.wait()
    child.stdout.close()
    with engine.client() as client:
        time.sleep(0.5)
        assert client.status()["engine"]["state"] == "recording"
        frames_before = client.status()["cameras"][0]["frames"]
        time.sleep(1.2)
        assert client.status()["cameras"][0]["frames"] > frames_before
        stopped = client.stop()
    assert stopped["folder"] == str(folder)
    report = verify_recording(folder)
    assert report.ok, report.summary()
    assert report.cameras["left"]["frames_decoded"] >= 30


def test_a_wrong_key_is_refused_and_the_engine_carries_on(engine):
    with pytest.raises((AuthenticationError, EOFError, ConnectionError)):
        Client(str(socket_path(engine.folder)), family="AF_UNIX", authkey=b"not the key")
    with engine.client() as client:
        assert client.ping()


def test_garbage_bytes_and_silent_peers_never_hurt_the_engine(engine):
    garbage = socket.socket(socket.AF_UNIX)
    garbage.connect(str(socket_path(engine.folder)))
    garbage.sendall(os.urandom(4096))
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(socket_path(engine.folder)))  # connects, never speaks
    try:
        with engine.client() as client:  # served while the silent peer waits
            assert client.ping()
        garbage.settimeout(10)
        with pytest.raises((ConnectionError, OSError)):
            while garbage.recv(4096):  # the engine hangs up on it
                pass
            raise ConnectionError("closed")
    finally:
        garbage.close()
        silent.close()


def test_malformed_unknown_wrong_typed_and_oversized_requests(engine):
    conn = Client(str(socket_path(engine.folder)), family="AF_UNIX",
                  authkey=key_path(engine.folder).read_bytes())
    try:
        def ask(raw: bytes) -> dict:
            conn.send_bytes(raw)
            return json.loads(conn.recv_bytes())

        assert "not a JSON message" in ask(b"\xff\xfe{nope")["error"]
        assert "JSON object" in ask(b"[1, 2]")["error"]
        unknown = ask(framing.encode({"id": 1, "cmd": "format_disk"}))
        assert "unknown command 'format_disk'" in unknown["error"]
        assert "'cmd' must be a string" in ask(b'{"id": 2, "cmd": 7}')["error"]
        answer = ask(framing.encode({"id": 3, "cmd": "set", "args": {"camera": 5, "changes": {}}}))
        assert not answer["ok"] and "'camera' must be a string" in answer["error"]
        answer = ask(framing.encode({"id": 4, "cmd": "record", "args": {"bogus": 1}}))
        assert "bad arguments for 'record'" in answer["error"]
        with pytest.raises((EOFError, OSError)):  # over the limit: the engine hangs up
            conn.send_bytes(b"x" * (framing.MAX_MESSAGE + 10))
            conn.recv_bytes()
    finally:
        conn.close()
    with engine.client() as client:
        assert client.status()["engine"]["state"] == "running"


def test_network_camera_passwords_never_leave_the_engine(engine):
    events = []
    url = "rtsp://operator:hunter2@127.0.0.1:9/stream"
    with engine.client() as client:
        client.subscribe(events.append)
        client.add_camera(url, id="door", settings={"open_timeout_ms": 1500})
        status = client.status()
        time.sleep(1.2)  # a stats event
    door = next(c for c in status["cameras"] if c["id"] == "door")
    assert door["status"] in ("crashed", "restarting") and door["error"]
    everything = json.dumps(status) + json.dumps([EVENTS.to_wire(e) for e in events])
    assert "hunter2" not in everything
    assert "operator:***@127.0.0.1" in everything
    assert "hunter2" not in engine.cli("status", "--json").stdout


def test_a_dead_engine_is_reported_clearly(engine):
    client = engine.client()
    engine.process.kill()
    engine.process.wait()
    with pytest.raises(EngineNotRunning):
        client.status()
    client.close()
    with pytest.raises(EngineNotRunning, match="engine not running"):
        EngineClient.connect(engine.folder)
    result = engine.cli("status")
    assert result.returncode == 1
    assert "engine not running" in result.stderr


def test_cli_status_and_ctl(engine):
    assert "left" in engine.cli("status").stdout
    status = json.loads(engine.cli("status", "--json").stdout)
    assert status["engine"]["state"] == "running"
    started = engine.cli("ctl", "record", "--name", "cli-take")
    assert started.returncode == 0, started.stderr
    assert "cli-take" in started.stdout
    assert engine.cli("ctl", "pause").returncode == 0
    assert engine.cli("ctl", "resume").returncode == 0
    assert json.loads(engine.cli("ctl", "freeze").stdout)["state"] == "frozen"
    assert json.loads(engine.cli("ctl", "unfreeze").stdout)["state"] == "recording"
    assert engine.cli("ctl", "set", "left", "brightness=10").returncode == 0
    refused = engine.cli("ctl", "set", "left", "brightness=999")
    assert refused.returncode == 1 and "brightness" in refused.stderr
    stopped = engine.cli("ctl", "stop")
    assert stopped.returncode == 0
    assert verify_recording(Path(json.loads(stopped.stdout)["folder"])).ok
    refused = engine.cli("ctl", "pause")
    assert refused.returncode == 1 and "nothing is being recorded" in refused.stderr
    assert engine.cli("ctl", "shutdown").returncode == 0
    engine.process.wait(timeout=20)
    assert engine.process.returncode == 0


def test_a_second_engine_on_the_same_folder_is_refused(engine):
    result = engine.cli("serve", "--demo", "1")
    assert result.returncode == 1
    assert "already running" in result.stderr


def test_a_broken_rig_file_is_named_with_its_line(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n\n[[cameras]]\nid = "a"\nsource = "synthetic"\nfps = "fast"\n')
    folder = short_folder()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "engine", "serve", "--rig", str(broken)],
            env={**os.environ, RUNTIME_DIR_ENV: str(folder)}, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 1
    assert "broken.toml:6" in result.stderr and "fps" in result.stderr


def test_the_client_launches_an_engine_when_none_runs(tmp_path):
    folder = short_folder()
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(RIG.format(output=tmp_path / "out"))
    try:
        with EngineClient.connect(folder, launch=["--rig", str(rig_file)]) as client:
            pid = client.ping()["pid"]
            assert client.status()["rig"]["name"] == "test rig"
            client.shutdown()
        psutil.Process(pid).wait(timeout=20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_socket_and_key_are_private_to_the_user(engine):
    assert socket_path(engine.folder).stat().st_mode & 0o777 == 0o600
    assert key_path(engine.folder).stat().st_mode & 0o777 == 0o600
    listening = [c for c in psutil.Process(engine.process.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert not listening  # no TCP listener


def test_properties_of_a_stopped_camera_are_refused_clearly(engine):
    with engine.client() as client:
        client.stop_camera("right")
        with pytest.raises(EngineCommandError, match="camera 'right' is not running"):
            client.properties("right")


@pytest.mark.parametrize("name", ["../../escape", "/tmp/elsewhere", "a/b", "..", ".hidden",
                                  "tab\there", "back\\slash"])
def test_a_recording_name_that_is_not_a_plain_name_is_refused(engine, tmp_path, name):
    """Names used to be joined to the output folder as given: `../../escape` or an
    absolute path recorded outside it, where start-up recovery never looks."""
    with engine.client() as client:
        with pytest.raises(EngineCommandError, match="is not a plain name"):
            client.record(name=name)
        started = client.record(name="plain take_2")  # and the engine records as before
        client.stop()
    assert Path(started["folder"]).parent == engine.output
    outside = set(tmp_path.parent.rglob("*escape*"))  # ../../escape from the output folder
    assert not outside and not Path("/tmp/elsewhere").exists()


def test_a_clean_exit_leaves_no_key_or_socket(tmp_path):
    """The socket's key used to stay in the runtime folder after the engine had gone."""
    engine = Engine(tmp_path)
    try:
        with engine.client() as client:
            client.status()
        assert (engine.folder / "engine.key").exists()
    finally:
        engine.stop(keep_folder=True)
    assert engine.process.returncode == 0
    left = {path.name for path in engine.folder.iterdir()}
    shutil.rmtree(engine.folder, ignore_errors=True)
    assert not left & {"engine.key", "engine.sock"}, left
