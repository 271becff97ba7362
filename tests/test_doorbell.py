"""The doorbell that wakes a recording writer: it wakes a spawned process, keeps a ring
that came before the wait, and a recording's writer sleeps between batches of sets
instead of looking for frames."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from engine.capture.group import CaptureGroup
from engine.ipc.doorbell import Doorbell
from engine.recording.manifest import read_manifest
from engine.specs import CameraSpec
from tests.waiting import wait_for


def _answer_each_ring(bell: Doorbell, answer: Doorbell, rings: int) -> None:
    for _ in range(rings):
        if bell.wait(5.0):
            answer.ring()


def test_a_doorbell_wakes_a_spawned_process_each_time_it_rings():
    bell, answer = Doorbell(), Doorbell()
    child = mp.get_context("spawn").Process(target=_answer_each_ring, args=(bell, answer, 3))
    child.start()
    try:
        for _ in range(3):
            bell.ring()
            assert answer.wait(10.0), "the child did not wake"
        child.join(10)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        bell.close()
        answer.close()


def test_a_ring_before_the_wait_is_kept_and_a_wait_without_one_times_out():
    bell = Doorbell()
    try:
        assert not bell.wait(0.01)
        for _ in range(10_000):  # more rings than the pipe holds: never blocks
            bell.ring()
        assert bell.wait(0.0)
        assert not bell.wait(0.01)  # one wait took every ring
    finally:
        bell.close()


def _voluntary_switches(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("voluntary_ctxt_switches"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_recording_writer_sleeps_while_no_frame_set_comes(tmp_path):
    """A frozen take publishes no frames: a writer that looked for frames woke over a
    hundred times a second then; one that sleeps on its doorbell wakes only for its
    safety timeout. It still writes every set once the cameras go on."""
    spec = CameraSpec("cam0", "synthetic", 320, 240, 30.0)
    with CaptureGroup([spec]) as group:
        recording = group.start_recording(tmp_path, "mjpeg", name="take")
        begun = int(group.counts()[0])  # published before the take: the take begins after
        wait_for(lambda: group.counts()[0] > begun + 15, 10, "frames to be recorded")
        group.freeze()
        writer = group.process_ids()["cam0-writer"]
        wait_for(lambda: group.snapshot()["cameras"][0]["writer_lag"] == 0, 10,
                 "the writer to catch up")
        switches, started = _voluntary_switches(writer), time.monotonic()
        wait_for(lambda: time.monotonic() - started > 2.0, 5, "two idle seconds")
        woke = _voluntary_switches(writer) - switches
        group.unfreeze()
        frames = int(group.counts()[0])
        wait_for(lambda: group.counts()[0] > frames + 15, 10, "frames after the freeze")
        group.stop_recording()
    # Its safety timeout wakes it 4 times in 2 s; polling woke it ~240 times.
    assert woke <= 30, f"an idle writer woke {woke} times in 2 s"
    manifest = read_manifest(recording.folder)
    # The take held at most frames - begun at the freeze, and 15 or more came after it.
    assert manifest["status"] == "finalized"
    assert manifest["cameras"][0]["frames"] > frames - begun + 10, (frames, begun)
