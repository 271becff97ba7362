"""Exports through the engine service: a real engine records a take, a client exports it
in the background and follows its events; bad requests are refused at once, naming the
problem. The worker threads' own rules (progress at most ten a second, one export per
recording and format, cancelled when the engine closes) are checked in-process."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Any

import av
import pytest

from engine.client import EngineClient, EngineCommandError
from engine.export import FORMATS
from engine.service import exports
from engine.service.exports import ExportRefused, Exports
from engine.wire.events import Event, ExportFinished, ExportProgress
from tests.engines import RIG, Engine
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def record_take(client: EngineClient, name: str) -> Path:
    client.record(name=name)
    wait_for(lambda: (client.status()["recording"]["recorded_frames"] or 0) >= 15, 10,
             "frame sets recorded")
    stopped = client.stop()
    assert stopped["status"] == "finalized"
    return Path(stopped["folder"])


def finished(events: list[Event], folder: Path, to: str) -> ExportFinished | None:
    return next((e for e in events if isinstance(e, ExportFinished)
                 and e.folder == str(folder) and e.to == to), None)


def test_a_take_exported_through_the_engine_reports_progress_and_its_output(engine):
    events: list[Event] = []
    with engine.client() as client:
        client.subscribe(events.append)
        assert client.status()["engine"]["export_formats"] == list(FORMATS)
        folder = record_take(client, "take")
        answer = client.export(folder, "mkv")
        assert answer == {"folder": str(folder.resolve()), "to": "mkv"}
        done = wait_for(lambda: finished(events, folder, "mkv"), 60, "export_finished")
        # the engine carried on meanwhile: capture still counts frames, status answers
        assert client.status()["engine"]["state"] == "running"
    assert done.error is None and done.output is not None
    progress = [e.fraction for e in events
                if isinstance(e, ExportProgress) and e.folder == str(folder)]
    assert progress and progress[0] == 0.0
    assert progress == sorted(progress) and all(0.0 <= f <= 1.0 for f in progress)
    assert events.index(done) > max(i for i, e in enumerate(events)
                                    if isinstance(e, ExportProgress))

    frames = json.loads((folder / "recording.json").read_text())["cameras"][0]["frames"]
    output = Path(done.output)
    with av.open(str(output)) as container:  # one video track per camera, every frame
        videos = container.streams.video
        assert len(videos) == 2
        counts = {index: 0 for index in range(len(videos))}
        for packet in container.demux(*videos):
            if packet.size:
                counts[packet.stream.index] += 1
    assert set(counts.values()) == {frames}


def test_bad_exports_are_refused_naming_the_problem(engine, tmp_path):
    with engine.client() as client:
        folder = record_take(client, "take")
        with pytest.raises(EngineCommandError, match=r"unknown export format 'gif' \(formats: "):
            client.export(folder, "gif")
        with pytest.raises(EngineCommandError, match=r"no recording at .*missing.*is missing"):
            client.export(engine.output / "missing", "mkv")
        elsewhere = tmp_path / "elsewhere" / "take"
        shutil.copytree(folder, elsewhere)
        outside = "is not a recording in the recordings folder"
        for refused in (elsewhere, engine.output / ".." / "elsewhere" / "take", engine.output):
            with pytest.raises(EngineCommandError, match=outside):
                client.export(refused, "nwb")

        client.record(name="running")
        try:
            with pytest.raises(EngineCommandError, match="running is not finished: its status is "
                                                         "'recording', not finalized or recovered"):
                client.export(engine.output / "running", "mkv")
        finally:
            client.stop()


def test_the_rigs_export_after_exports_every_take_once_it_is_final(tmp_path):
    rig = RIG.replace('codec = "mjpeg"\n', 'codec = "mjpeg"\nexport_after = ["mkv", "anipose"]\n')
    engine = Engine(tmp_path, rig)
    events: list[Event] = []
    try:
        with engine.client() as client:
            client.subscribe(events.append)
            folder = record_take(client, "auto")
            ends = [wait_for(lambda to=to: finished(events, folder, to), 60, f"{to} exported")
                    for to in ("mkv", "anipose")]
    finally:
        engine.stop()
    assert [(end.error, end.output) for end in ends] == [
        (None, str(folder / "exports" / "mkv" / "auto.mkv")),
        (None, str(folder / "exports" / "anipose" / "auto"))]
    assert all(Path(end.output).exists() for end in ends if end.output)
    finalized = next(i for i, e in enumerate(events) if e.NAME == "recording_finalized")
    assert all(events.index(end) > finalized for end in ends)


# --- the worker threads, in this process ----------------------------------------------------


class Collected:
    """The events an Exports emits, thread-safe enough for list appends."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def test_progress_is_sent_at_most_ten_times_a_second(monkeypatch, tmp_path):
    def chatty(folder: Path, to: str, output: Path | None, progress: Any) -> Path:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < 0.6:  # a report every millisecond
            progress(elapsed / 0.6)
            time.sleep(0.001)
        return tmp_path / "out.mkv"

    monkeypatch.setattr(exports, "export_take", chatty)
    sent = Collected()
    running = Exports(sent)
    running.start(tmp_path / "take", "mkv", None)
    wait_for(lambda: sent.of(ExportFinished), 10, "export_finished")
    running.close()
    progress = sent.of(ExportProgress)
    assert 4 <= len(progress) <= 8  # the first (0.0) and then one per 0.1 s of 0.6 s
    gaps = [b.time - a.time for a, b in itertools.pairwise(progress[1:])]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert sent.of(ExportFinished) == [ExportFinished(
        time=sent.of(ExportFinished)[0].time, folder=str(tmp_path / "take"), to="mkv",
        output=str(tmp_path / "out.mkv"), error=None)]


def test_one_export_per_take_and_format_and_closing_cancels_them(monkeypatch, tmp_path):
    def endless(folder: Path, to: str, output: Path | None, progress: Any) -> Path:
        while True:  # reports until the engine closes: progress raises then
            progress(0.5)
            time.sleep(0.01)

    monkeypatch.setattr(exports, "export_take", endless)
    sent = Collected()
    running = Exports(sent)
    take = tmp_path / "take"
    running.start(take, "nwb", None)
    with pytest.raises(ExportRefused, match="take is being exported to nwb already"):
        running.start(take, "nwb", None)
    running.start(take, "anipose", None)  # another format of it may run beside
    started = time.monotonic()
    running.close()
    assert time.monotonic() - started < 2
    ends = {e.to: e for e in sent.of(ExportFinished)}
    assert set(ends) == {"nwb", "anipose"}
    assert all(e.output is None and "the engine shut down" in (e.error or "")
               for e in ends.values())
    with pytest.raises(ExportRefused, match="shutting down"):
        running.start(take, "nwb", None)


def test_a_failing_format_ends_its_export_with_the_reason(monkeypatch, tmp_path):
    def broken(folder: Path, to: str, output: Path | None, progress: Any) -> Path:
        raise ZeroDivisionError("a bug in the format")

    monkeypatch.setattr(exports, "export_take", broken)
    sent = Collected()
    running = Exports(sent)
    running.start(tmp_path / "take", "skellycam", None)
    end = wait_for(lambda: sent.of(ExportFinished), 10, "export_finished")[0]
    running.close()
    assert end.output is None
    assert end.error == "internal error: ZeroDivisionError: a bug in the format"
