"""One take across three nodes of a rig on a real NATS server: two free-running synthetic
cameras per node (each on its own clock, a little fast or slow, with jitter), one node's
clock 250 ms off as another machine's would be. The take is proved by the pictures: every camera
burns its capture time (on its node's clock) into each frame; decoded from the files and
moved onto the coordinator's clock by the offsets the coordinator measured, frame k of
all six files shows one moment to within a frame period."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from engine.recording.manifest import read_manifest
from engine.recording.stamp_band import top_rows
from engine.recording.timestamps import read_timestamps
from engine.sources import clockstamp
from tests.engines import ROOT, Engine
from tests.rig_nodes import (
    MS,
    TOKEN,
    Broker,
    rig_command,
    rig_env,
    run_rig,
    start_node,
)
from tests.waiting import wait_for

FPS = 30.0
PERIOD_NS = 1e9 / FPS


def rig_text(node: str, seed: int) -> str:
    """A node's rig file (Engine fills in {output}): two free-running cameras, one a little
    fast and one a little slow, burning their capture times into their frames."""
    cameras = "".join(f"""
[[cameras]]
id = "{camera}"
source = "synthetic"
width = 256
height = 192
fps = 30.0
settings = {{{{ clock = "free", time_stamp = true, rate_scale = {scale}, jitter_ms = 2.0, \
seed = {seed + index} }}}}
""" for index, (camera, scale) in enumerate((("left", 1.0002), ("right", 0.9998))))
    return f'name = "node {node}"\n\n[recording]\noutput = "{{output}}"\ncodec = "mjpeg"\n' \
        + cameras


def relative_segments(folder: Path) -> list[list[int]]:
    """A node's recorded frame sets, counted from its take's first (nodes number their
    frames from when their own cameras started)."""
    manifest = read_manifest(folder)
    first = manifest["first_frame"]
    return [[start - first, end - first] for start, end in manifest["segments"]]


def start_nodes(tmp_path: Path, broker_url: str) -> dict[str, Engine]:
    """Nodes a, b and c; c's clock is 250 ms ahead."""
    return {name: start_node(tmp_path, name, broker_url, offset_ns=offset, rig_text=rig_text(
        name, seed)) for name, offset, seed in (("a", 0, 1), ("b", 0, 3), ("c", 250 * MS, 5))}


def stop_nodes(nodes: dict[str, Engine]) -> None:
    for node in nodes.values():
        node.stop()


def record_in_background(broker_url: str, take: Path, *extra: str) -> subprocess.Popen[str]:
    """`rig record` of the three nodes into take (its folder), running on."""
    return subprocess.Popen(
        rig_command("record", "--broker", broker_url, "--expect", "3", "--output",
                    str(take.parent), "--name", take.name, *extra),
        env=rig_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate()


def decoded_stamps(video: Path) -> list[int | None]:
    """The capture time burned into every frame of a video (None where unreadable)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        rows = clockstamp.band_height(stream.codec_context.width)
        stamps = [clockstamp.read(top_rows(frame, rows)) for frame in container.decode(stream)]
    return [None if stamp is None else stamp.monotonic_ns for stamp in stamps]


def node_files(entry: dict[str, Any]) -> dict[str, tuple[Path, Path]]:
    """camera -> (video, timestamps) of one node's take."""
    folder = Path(entry["folder"])
    manifest = read_manifest(folder)
    return {camera["id"]: (folder / camera["file"], folder / camera["timestamps"])
            for camera in manifest["cameras"]}


@pytest.mark.slow  # 20 s of a three-node take (25 s in all): .ci/run's slow step
def test_one_take_across_three_nodes_shows_one_moment_in_every_file(tmp_path, broker):
    nodes = start_nodes(tmp_path, broker.url)
    try:
        result = run_rig("record", "--broker", broker.url, "--seconds", "20", "--expect", "3",
                         "--output", str(tmp_path / "rig-takes"), "--name", "take1", "--json",
                         timeout_s=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert TOKEN not in result.stdout + result.stderr
        manifest = json.loads(result.stdout)
        assert manifest["status"] == "finished", manifest
        assert manifest == {**json.loads((tmp_path / "rig-takes/take1/rig.json").read_text()),
                            "folder": str(tmp_path / "rig-takes/take1")}
        assert TOKEN not in (tmp_path / "rig-takes/take1/rig.json").read_text()
        entries = {entry["node"]: entry for entry in manifest["nodes"]}
        assert sorted(entries) == ["a", "b", "c"]
        offsets = {node: entry["clock"]["start"]["offset_ns"] for node, entry in entries.items()}
        assert abs(offsets["c"] - 250 * MS) < 2 * MS, entries["c"]["clock"]
        assert abs(offsets["a"]) < 2 * MS and abs(offsets["b"]) < 2 * MS, offsets

        frames = {}
        aligned = {}
        for node, entry in entries.items():
            assert entry["status"] == "finalized", entry
            assert read_manifest(Path(entry["folder"]))["rig_take"]["take"] == "take1"
            for camera, (video, timestamps) in node_files(entry).items():
                stamps = decoded_stamps(video)
                assert None not in stamps, f"{node}/{camera}: unreadable stamps"
                captured = read_timestamps(timestamps)["capture_ns"]
                assert stamps == captured.tolist(), f"{node}/{camera}: stamps != timestamps"
                frames[f"{node}/{camera}"] = len(stamps)
                aligned[f"{node}/{camera}"] = np.array(stamps, np.int64) - offsets[node]
        assert len(frames) == 6
        assert set(frames.values()) == {600}, frames
        spread = np.ptp(np.stack(list(aligned.values())), axis=0)
        # A frame set's cameras captured within one period of its moment; the offsets are
        # known to within their uncertainty, which the comparison allows for.
        known_ms = 2 * max(entry["clock"]["start"]["uncertainty_ms"] for entry in entries.values())
        assert spread.max() < PERIOD_NS + known_ms * MS, (
            f"frame set {spread.argmax()} spread {spread.max() / 1e6:.1f} ms across nodes")
        # Without the measured offset, node c's files would show moments 250 ms apart.
        assert np.ptp(np.stack([aligned["a/left"], aligned["c/left"] + offsets["c"]]),
                      axis=0).min() > 200 * MS

        print(f"offsets {offsets}; decoded spread max {spread.max() / 1e6:.2f} ms, "
              f"p99 {np.percentile(spread, 99) / 1e6:.2f} ms; sync {manifest['sync']}")
        report = json.loads((tmp_path / "rig-takes/take1/sync_report.json").read_text())
        assert report["identical_counts"] and report["frame_sets"] == 600
        # The report also corrects each node's drift between its start and end offsets.
        assert report["spread_ms"]["max"] == pytest.approx(spread.max() / 1e6, abs=0.5)
        assert report["within_one_period"] == 1.0
        assert manifest["sync"]["start_skew_ms"] < PERIOD_NS / 1e6
    finally:
        stop_nodes(nodes)


@pytest.mark.slow  # 15-35 s of a rig's take: .ci/run's slow step
def test_a_node_killed_mid_take_is_marked_lost_then_joined_by_assemble(tmp_path, broker):
    nodes = start_nodes(tmp_path, broker.url)
    take = tmp_path / "rig-takes" / "take2"
    coordinator = record_in_background(broker.url, take, "--seconds", "12", "--json")
    try:
        def c_recorded_frames() -> int:
            manifest = json.loads((take / "rig.json").read_text()) \
                if (take / "rig.json").exists() else {"nodes": []}
            entry = next((e for e in manifest["nodes"] if e["node"] == "c"), None)
            if entry is None or not entry.get("folder"):
                return 0
            csv = Path(entry["folder"]) / "timestamps" / "left.csv"
            return len(csv.read_text().splitlines()) - 1 if csv.exists() else 0

        wait_for(lambda: c_recorded_frames() >= 90, 60, "node c to record 3 s")
        os.kill(nodes["c"].process.pid, signal.SIGKILL)
        killed_runtime = nodes["c"].folder
        out, err = coordinator.communicate(timeout=120)
        assert coordinator.returncode == 1, out + err  # the take is not whole
        manifest = json.loads(out)
        entries = {entry["node"]: entry for entry in manifest["nodes"]}
        assert manifest["status"] == "incomplete"
        assert entries["c"]["status"] == "lost" and entries["c"]["error"], entries["c"]
        for node in "ab":
            assert entries[node]["status"] == "finalized"
            assert [camera["frames"] for camera in entries[node]["cameras"]] == [360, 360]

        nodes["c"].stop(keep_folder=True)
        nodes["c"] = start_node(tmp_path, "c", broker.url, offset_ns=250 * MS,
                                rig_text=rig_text("c", 5), runtime=killed_runtime)
        wait_for(lambda: read_manifest(Path(entries["c"]["folder"]))["status"] == "recovered",
                 60, "node c to recover its take")
        assembled = run_rig("assemble", str(take), "--broker", broker.url, "--json")
        assert assembled.returncode == 0, assembled.stdout + assembled.stderr
        joined = {entry["node"]: entry for entry in json.loads(assembled.stdout)["nodes"]}
        assert joined["c"]["status"] == "recovered"
        salvaged = [camera["frames"] for camera in joined["c"]["cameras"]]
        assert min(salvaged) >= 90 and max(salvaged) < 360, salvaged
        report = json.loads((take / "sync_report.json").read_text())
        assert report["cameras"] == 6 and report["frame_sets"] == min(salvaged)
        assert report["within_one_period"] == 1.0, report
    finally:
        end(coordinator)
        stop_nodes(nodes)


@pytest.mark.slow  # 15-35 s of a rig's take: .ci/run's slow step
def test_the_broker_restarting_mid_take_does_not_stop_it(tmp_path, broker):
    nodes = start_nodes(tmp_path, broker.url)
    take = tmp_path / "rig-takes" / "take3"
    coordinator = record_in_background(broker.url, take, "--seconds", "12", "--json")
    restarted = None
    try:
        wait_for(lambda: (take / "rig.json").exists()
                 and json.loads((take / "rig.json").read_text())["nodes"][0].get("folder"),
                 60, "the take to start")
        time.sleep(2.0)  # two seconds into the take
        broker.stop()
        time.sleep(3.0)  # the broker is away for three seconds of the take
        restarted = Broker(broker.port)
        out, err = coordinator.communicate(timeout=120)
        assert coordinator.returncode == 0, out + err
        manifest = json.loads(out)
        counts = {f"{entry['node']}/{camera['id']}": camera["frames"]
                  for entry in manifest["nodes"] for camera in entry["cameras"]}
        assert len(counts) == 6 and set(counts.values()) == {360}, counts
        assert manifest["sync"]["within_one_period"] == 1.0, manifest["sync"]
    finally:
        end(coordinator)
        stop_nodes(nodes)
        if restarted is not None:
            restarted.stop()


@pytest.mark.slow  # 15-35 s of a rig's take: .ci/run's slow step
def test_a_new_coordinator_stops_a_take_whose_coordinator_was_killed(tmp_path, broker):
    """`rig record` without a length, paused and resumed from other coordinators, is
    SIGKILLed mid-take: the nodes record on, and `rig stop` from a new coordinator ends
    them after one frame set and assembles."""
    nodes = start_nodes(tmp_path, broker.url)
    take = tmp_path / "rig-takes" / "take4"
    coordinator = record_in_background(broker.url, take)
    try:
        wait_for(lambda: (take / "rig.json").exists() and all(
            entry.get("folder") for entry in json.loads((take / "rig.json").read_text())["nodes"]),
            60, "the take to start on every node")
        for action in ("pause", "resume"):  # each from a coordinator of its own
            time.sleep(1.0)
            done = run_rig(action, str(take), "--broker", broker.url)
            assert done.returncode == 0, done.stdout + done.stderr
        coordinator.kill()
        coordinator.communicate()
        time.sleep(2.0)  # the nodes record on without it
        for node in nodes.values():
            with node.client() as client:
                assert client.status()["recording"]["rig_take"]["take"] == "take4"
        stopped = run_rig("stop", str(take), "--broker", broker.url, "--json", timeout_s=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        manifest = json.loads(stopped.stdout)
        counts = {camera["frames"] for entry in manifest["nodes"] for camera in entry["cameras"]}
        assert len(counts) == 1 and counts.pop() >= 60, manifest
        assert manifest["sync"]["within_one_period"] == 1.0, manifest["sync"]
        segments = {json.dumps(relative_segments(Path(entry["folder"])))
                    for entry in manifest["nodes"]}
        assert len(segments) == 1, segments  # every node skipped the same sets of the take
        assert len(json.loads(segments.pop())) == 2
    finally:
        end(coordinator)
        stop_nodes(nodes)


def test_a_take_is_refused_when_a_node_clock_cannot_meet_the_tolerance(tmp_path, broker):
    node = start_node(tmp_path, "a", broker.url, rig_text=rig_text("a", 1))
    try:
        refused = run_rig("record", "--broker", broker.url, "--seconds", "2", "--expect", "1",
                          "--tolerance-ms", "0.0001", "--output", str(tmp_path / "rig-takes"))
        assert refused.returncode == 1
        assert "recording refused: node a's clock offset is known only to" in refused.stderr
        assert "tolerance is 0.0001 ms" in refused.stderr, refused.stderr
        assert not (tmp_path / "rig-takes").exists()
        with node.client() as client:
            assert client.status()["recording"] is None
    finally:
        node.stop()
