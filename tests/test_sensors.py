"""Sensors: the synthetic IMU, a line device on a real pseudo-terminal, the sensor process
(spawned, with a real GroupState) and the MKV text track read back with PyAV."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import multiprocessing
import os
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest

from engine.ipc.control import G_STOP, GroupState
from engine.ipc.messages import (
    Exit,
    RecordSensor,
    SensorFailed,
    SensorFinished,
    SensorOpened,
    SensorRecording,
    StopSensor,
)
from engine.recording.sensor_track import write_sensor_track
from engine.sensors import SensorError, create_sensor
from engine.sensors.serial_lines import SerialLineSensor
from engine.sensors.sidecar import SidecarWriter, read_sidecar, sidecar_path
from engine.sensors.synthetic_imu import IMU_FIELDS, SyntheticIMU, imu_sample
from engine.workers.sensor import sensor_main
from tests.conftest import tool_or_skip
from tests.waiting import wait_for

SPAWN = multiprocessing.get_context("spawn")


def read_for(sensor: Any, seconds: float) -> list[tuple[float, ...]]:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        values = sensor.read(0.1)
        if values is not None:
            samples.append(values)
    return samples


# --- synthetic IMU and the factory ---------------------------------------------------


@pytest.mark.timeout(10)
def test_synthetic_imu_paces_100_hz_with_known_values():
    imu = SyntheticIMU()
    imu.open()
    try:
        samples = read_for(imu, 1.0)
    finally:
        imu.close()
    assert imu.rate_hz == 100.0
    assert imu.fields() == ("ax", "ay", "az", "gx", "gy", "gz")
    assert 60 <= len(samples) <= 120  # 100 due; a loaded CI machine may lag
    assert samples == [imu_sample(i, 100.0) for i in range(len(samples))]
    assert samples[0][2] == pytest.approx(9.80665)  # gravity on az, sinusoids start at 0
    with pytest.raises(SensorError, match="not open"):
        imu.read(0.1)


@pytest.mark.timeout(10)
def test_synthetic_imu_rate_from_uri_or_settings():
    assert create_sensor("imu:synthetic", rate=50).rate_hz == 50.0
    imu = create_sensor("imu:synthetic?rate=200")
    imu.open()
    try:
        samples = read_for(imu, 0.5)
    finally:
        imu.close()
    assert imu.rate_hz == 200.0
    assert 60 <= len(samples) <= 120  # 100 due; a loaded CI machine may lag
    assert samples == [imu_sample(i, 200.0) for i in range(len(samples))]


@pytest.mark.timeout(5)
def test_create_sensor_parses_serial_options():
    sensor = create_sensor("serial:/dev/ttyUSB0?baud=9600&fields=ax,ay,az&rate=50")
    assert isinstance(sensor, SerialLineSensor)
    assert sensor.path == "/dev/ttyUSB0"
    assert sensor.fields() == ("ax", "ay", "az")
    assert sensor.rate_hz == 50.0
    # keyword settings override the URI; fields may be a sequence; rate may stay undeclared
    sensor = create_sensor("serial:/dev/ttyACM0?fields=a", fields=["t", "v"], baud="57600")
    assert sensor.fields() == ("t", "v")
    assert sensor.rate_hz == 0.0


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("uri", "settings", "message"),
    [
        ("", {}, "unknown sensor ''.*expected 'imu:synthetic'.*'serial:<path>'"),
        ("imu:bosch", {}, "unknown sensor 'imu:bosch'.*expected"),
        ("synthetic", {}, "unknown sensor 'synthetic'"),
        ("serial:", {}, "unknown sensor 'serial:'"),
        ("imu:synthetic?rate=0", {}, "'imu:synthetic'.*rate must be"),
        ("imu:synthetic", {"rate": "fast"}, "rate must be a number"),
        ("imu:synthetic?fps=30", {}, "unknown option\\(s\\) fps; accepted: rate"),
        ("serial:/dev/ttyUSB0", {}, "'serial:/dev/ttyUSB0'.*needs fields="),
        ("serial:/dev/ttyUSB0?fields=ax,ax", {}, "field names repeat"),
        ("serial:/dev/ttyUSB0?fields=frame,ax", {}, "field name 'frame'"),
        ("serial:/dev/ttyUSB0?fields=a b", {}, "field name 'a b'"),
        ("serial:/dev/ttyUSB0?fields=ax&baud=1234", {}, "baud must be one of .*115200"),
    ],
)
def test_create_sensor_rejects(uri, settings, message):
    with pytest.raises(SensorError, match=message):
        create_sensor(uri, **settings)


# --- the line device on a pseudo-terminal ---------------------------------------------


class Pty:
    """A pseudo-terminal: the test plays the device on `master`, the sensor opens `path`."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self._open = [self.master, self.slave]

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        self._open.remove(self.master)
        os.close(self.master)

    def close(self) -> None:
        for fd in self._open:
            os.close(fd)
        self._open.clear()


@pytest.fixture
def pty() -> Iterator[Pty]:
    device = Pty()
    try:
        yield device
    finally:
        device.close()


@pytest.mark.timeout(5)
def test_serial_lines_parsed_and_bad_lines_skipped(pty):
    sensor = SerialLineSensor(pty.path, fields="ax,ay,az")
    sensor.open()
    try:
        pty.write(b"1,2,3\r\nnot numbers\n\n4 5\t6\n1,2\n-7.5, 8e-3 ,nan\n")
        first, second, third = (sensor.read(1.0) for _ in range(3))
        assert sensor.read(0.05) is None  # nothing more: times out instead of blocking
    finally:
        sensor.close()
    assert first == (1.0, 2.0, 3.0)
    assert second == (4.0, 5.0, 6.0)
    assert third[:2] == (-7.5, 0.008) and third[2] != third[2]  # nan
    assert sensor.bad_lines == 2  # "not numbers" and the two-value line; blank lines are no data


@pytest.mark.timeout(5)
def test_serial_open_sets_raw_mode_and_baud_and_drops_stale_input(pty):
    pty.write(b"9,9\n")  # sent before open: stale, must not be stamped as new
    sensor = create_sensor(f"serial:{pty.path}?baud=57600&fields=a,b")
    sensor.open()
    try:
        attributes = termios.tcgetattr(pty.slave)
        assert attributes[4] == attributes[5] == termios.B57600
        assert not attributes[3] & termios.ICANON
        pty.write(b"1,2\n")
        assert sensor.read(1.0) == (1.0, 2.0)
    finally:
        sensor.close()


@pytest.mark.timeout(5)
def test_serial_hang_up_raises_instead_of_hanging(pty):
    sensor = SerialLineSensor(pty.path, fields=("v",))
    sensor.open()
    try:
        pty.write(b"1\n")
        assert sensor.read(1.0) == (1.0,)
        pty.unplug()
        started = time.monotonic()
        with pytest.raises(SensorError, match=f"serial:{pty.path}"):
            sensor.read(2.0)
        assert time.monotonic() - started < 1.0
    finally:
        sensor.close()
        sensor.close()


@pytest.mark.timeout(5)
def test_serial_missing_device_names_the_path(tmp_path):
    sensor = SerialLineSensor(str(tmp_path / "ttyUSB9"), fields="a")
    with pytest.raises(SensorError, match=r"ttyUSB9.*cannot open"):
        sensor.open()


# --- the sensor process -----------------------------------------------------------------


class SimulatedCameras:
    """Advances every camera's published-frame count at `fps`, logging (monotonic_ns, count)."""

    def __init__(self, state: GroupState, fps: float = 30.0) -> None:
        self.state = state
        self.period = 1.0 / fps
        self.log: list[tuple[int, int]] = [(time.monotonic_ns(), int(state.counts.min()))]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.state.counts[:] += 1
            self.log.append((time.monotonic_ns(), int(self.state.counts.min())))

    def count_at(self, monotonic_ns: int) -> int:
        return max(count for stamp, count in self.log if stamp <= monotonic_ns)

    def __enter__(self) -> SimulatedCameras:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def sensor_process(
    name: str, uri: str, n_cameras: int = 2
) -> Iterator[tuple[Any, GroupState, Any]]:
    """A spawned sensor_main with its pipe and a real GroupState; both cleaned up after."""
    state = GroupState.create(n_cameras)
    ours, theirs = SPAWN.Pipe()
    process = SPAWN.Process(
        target=sensor_main, args=(name, uri, {}, state.name, n_cameras, theirs), daemon=True
    )
    process.start()
    theirs.close()
    try:
        yield ours, state, process
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()
        state.close()


_KINDS = {SensorOpened: "opened", SensorRecording: "recording", SensorFinished: "finished",
          SensorFailed: "error"}


def _argument(message: Any) -> Any:
    """A message's one field, or all of them as a dict."""
    values = dataclasses.asdict(message)
    return next(iter(values.values())) if len(values) == 1 else values


def receive(conn: Any, kind: str, timeout: float = 5.0) -> Any:
    """The argument of the next `kind` message; other kinds are skipped, but not errors."""
    deadline = time.monotonic() + timeout
    while conn.poll(max(0.0, deadline - time.monotonic())):
        message = conn.recv()
        got, argument = _KINDS[type(message)], _argument(message)
        if got == kind:
            return argument
        assert got != "error", f"unexpected error from the sensor process: {argument}"
    raise AssertionError(f"no {kind!r} message within {timeout} s")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.timeout(15)
def test_sensor_process_records_stamped_samples(tmp_path):
    with sensor_process("imu", "imu:synthetic") as (conn, state, process):
        opened = receive(conn, "opened")
        assert opened == {"fields": list(IMU_FIELDS), "rate_hz": 100.0}
        with SimulatedCameras(state) as cameras:
            time.sleep(0.2)
            conn.send(RecordSensor(str(tmp_path)))
            path = Path(receive(conn, "recording"))
            time.sleep(1.0)
            conn.send(StopSensor())
            finished = receive(conn, "finished")
        conn.send(Exit())
        process.join(timeout=5)
        assert process.exitcode == 0

    assert path == sidecar_path(tmp_path, "imu") == tmp_path / "sensors" / "imu.csv"
    assert finished == {"samples": finished["samples"], "error": None, "path": str(path)}
    rows = read_rows(path)
    assert list(rows[0]) == ["sample", "monotonic_ns", "utc", "frame", *IMU_FIELDS]
    assert len(rows) == finished["samples"]
    assert 80 <= len(rows) <= 130
    assert [int(row["sample"]) for row in rows] == list(range(len(rows)))
    stamps = [int(row["monotonic_ns"]) for row in rows]
    assert all(b > a for a, b in pairwise(stamps))
    assert 0.8e9 <= stamps[-1] - stamps[0] <= 1.3e9
    assert all(row["utc"].endswith("Z") for row in rows)
    # values are the IMU's own, written exactly: consecutive samples of the formula
    values = [tuple(float(row[f]) for f in IMU_FIELDS) for row in rows]
    first_index = next(i for i in range(1000) if imu_sample(i, 100.0) == values[0])
    assert values == [imu_sample(first_index + i, 100.0) for i in range(len(values))]
    # the frame column follows the simulated cameras (30 Hz) and never goes back
    frames = [int(row["frame"]) for row in rows]
    assert all(b >= a for a, b in pairwise(frames))
    assert 20 <= frames[-1] - frames[0] <= 40
    slack = 20_000_000  # 20 ms: the stamp and the counts read are not one atomic step
    for stamp, frame in zip(stamps, frames, strict=True):
        assert cameras.count_at(stamp - slack) <= frame <= cameras.count_at(stamp + slack)


@pytest.mark.timeout(10)
def test_sensor_process_exits_on_group_stop_and_closes_the_file(tmp_path):
    with sensor_process("imu", "imu:synthetic") as (conn, state, process):
        conn.send(RecordSensor(str(tmp_path)))
        path = Path(receive(conn, "recording"))
        time.sleep(0.3)  # record a while (rows reach the file only every 0.5 s: nothing to poll)
        state.globals[G_STOP] = 1
        finished = receive(conn, "finished")
        process.join(timeout=5)
        assert process.exitcode == 0
    assert finished["error"] is None
    assert len(read_rows(path)) == finished["samples"] > 10


@pytest.mark.timeout(10)
def test_sensor_process_reports_an_unplugged_device_and_keeps_the_file(tmp_path, pty):
    with sensor_process("gps", f"serial:{pty.path}?fields=lat,lon") as (conn, _state, process):
        receive(conn, "opened")
        conn.send(StopSensor())  # stop without a recording is answered too
        assert receive(conn, "finished") == {"samples": 0, "error": None, "path": None}
        conn.send(RecordSensor(str(tmp_path)))
        csv_path = Path(receive(conn, "recording"))
        for i in range(5):
            pty.write(f"{i},{i / 2}\n".encode())
        pty.write(b"garbage\n")
        time.sleep(0.3)  # time to read the rows before the unplug; they are not yet on disk
        pty.unplug()
        error = receive(conn, "error")
        assert f"serial:{pty.path}" in error
        conn.send(("bogus", 1))
        assert "unknown message ('bogus', 1)" in receive(conn, "error")
        conn.send(StopSensor())
        finished = receive(conn, "finished")
        conn.send(Exit())
        process.join(timeout=5)
        assert process.exitcode == 0
    assert finished == {"samples": 5, "error": error, "path": str(csv_path)}
    rows = read_rows(csv_path)
    assert [(row["lat"], row["lon"]) for row in rows] == [
        (repr(float(i)), repr(i / 2)) for i in range(5)
    ]


def open_fifo_writer(path: Path, timeout: float = 5.0) -> int:
    """The write end of a FIFO, once a reader has it open (ENXIO until then)."""

    def opened() -> int | None:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # never 0: stdin is open
        except OSError:
            return None

    return wait_for(opened, timeout, "the sensor opening the FIFO", step_s=0.02)


@pytest.mark.timeout(10)
def test_sensor_process_reopens_a_device_that_comes_back(tmp_path):
    fifo = tmp_path / "device"
    os.mkfifo(fifo)
    with sensor_process("meter", f"serial:{fifo}?fields=v") as (conn, _state, process):
        receive(conn, "opened")
        conn.send(RecordSensor(str(tmp_path)))
        csv_path = Path(receive(conn, "recording"))
        writer = open_fifo_writer(fifo)
        os.write(writer, b"1\n2\n")
        os.close(writer)  # the device goes away: end of file
        error = receive(conn, "error")
        assert "device closed" in error
        writer = open_fifo_writer(fifo)  # back, once the process has re-opened it
        os.write(writer, b"3\n")
        assert receive(conn, "opened")["fields"] == ["v"]
        conn.send(Exit())  # exit while recording finishes the recording too
        finished = receive(conn, "finished")
        os.close(writer)
        process.join(timeout=5)
        assert process.exitcode == 0
    assert finished == {"samples": 3, "error": error, "path": str(csv_path)}
    assert [row["v"] for row in read_rows(csv_path)] == ["1.0", "2.0", "3.0"]


@pytest.mark.timeout(10)
def test_sensor_process_rejects_a_bad_name_and_exits():
    with sensor_process("../imu", "imu:synthetic") as (conn, _state, process):
        assert "sensor name '../imu'" in receive(conn, "error")
        process.join(timeout=5)
        assert process.exitcode == 0


# --- the MKV text track ---------------------------------------------------------------


def write_csv(path: Path, frames: list[int], period_ns: int = 10_000_000) -> None:
    writer = SidecarWriter(path, ("ax", "ay"))
    start = 5_000_000_000
    for i, frame in enumerate(frames):
        writer.write(i, start + i * period_ns, 1_700_000_000_000_000_000 + i * period_ns,
                     frame, (i * 0.5, -1.25))
    writer.close()


@pytest.mark.timeout(10)
def test_sensor_track_in_mkv_reads_back(tmp_path):
    csv_path = tmp_path / "imu.csv"
    frames = [8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11, 12, 12]  # ~30 fps video, 100 Hz sensor
    write_csv(csv_path, frames)
    mkv = tmp_path / "imu.mkv"
    written = write_sensor_track(csv_path, mkv, fps=30.0, first_frame=10)
    header, rows = read_sidecar(csv_path)
    recorded = [row for row in rows if int(row[3]) >= 10]
    assert written == len(recorded) == 8

    with av.open(str(mkv)) as container:
        stream = container.streams[0]
        assert stream.type == "subtitle"
        assert stream.metadata["title"] == "imu"
        assert stream.metadata["COLUMNS"] == ",".join(header)
        packets = [p for p in container.demux(stream) if p.size]
        timestamps = [float(p.pts * p.time_base) for p in packets]
        payloads = [bytes(p).decode() for p in packets]
    assert len(packets) == written
    assert timestamps == pytest.approx([i * 0.010 for i in range(written)])
    first = dict(zip(header, payloads[0].split(","), strict=True))
    assert first["sample"] == "5" and first["frame"] == "10"
    assert (float(first["ax"]), float(first["ay"])) == (2.5, -1.25)

    ffprobe = tool_or_skip("ffprobe")
    probe = json.loads(subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-count_packets", "-of", "json", str(mkv)],
        check=True, capture_output=True, text=True,
    ).stdout)
    (info,) = probe["streams"]
    assert (info["codec_type"], info["codec_name"]) == ("subtitle", "subrip")
    assert int(info["nb_read_packets"]) == written


@pytest.mark.timeout(5)
def test_sensor_track_anchor_lands_on_its_frame(tmp_path):
    """A sensor slower than the video: the first recorded sample is two frames in."""
    csv_path = tmp_path / "slow.csv"
    write_csv(csv_path, [9, 12, 15], period_ns=100_000_000)
    mkv = tmp_path / "slow.mkv"
    assert write_sensor_track(csv_path, mkv, fps=30.0, first_frame=10) == 2
    with av.open(str(mkv)) as container:
        pts = [p.pts for p in container.demux() if p.size]
    assert pts == [67, 167]  # 2 frames at 30 fps, then 100 ms later


@pytest.mark.timeout(5)
def test_read_sidecar_drops_a_row_cut_by_a_crash(tmp_path):
    csv_path = tmp_path / "imu.csv"
    write_csv(csv_path, [0, 1, 2])
    with open(csv_path, "a") as file:
        file.write("3,5030000000,2023-11-14T22:13:20.030000Z,3,1.")
    header, rows = read_sidecar(csv_path)
    assert len(rows) == 3 and header[-2:] == ["ax", "ay"]
