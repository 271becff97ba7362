"""A take's segments (the frame ranges a writing pause leaves), without processes: the
control block's flags, the segment arithmetic, the manifest's form, the sensor track."""

from __future__ import annotations

import pytest

from engine.capture.gate import Gate
from engine.ipc.ring import FLAG_FINISH, FLAG_RECORD
from engine.recording.errors import RecordingError
from engine.recording.segments import (
    as_array,
    frame_at,
    frame_numbers,
    leading,
    manifest_segments,
    recorded,
)
from engine.recording.sensor_track import track_packets


@pytest.fixture
def gate():
    gate = Gate(2, list)
    yield gate
    gate.close()


def test_frames_of_a_writing_pause_are_flagged_for_no_camera(gate):
    """Every camera reads the same cells: frames from the pause to the resume are
    captured but not recorded; the take's end still finishes the writers."""
    state = gate.state
    gate.begin_take(10)
    assert [state.recording_flags(n) for n in (9, 10, 11)] == [0, FLAG_RECORD, FLAG_RECORD]
    gate.pause_writing(15)
    assert [state.recording_flags(n) for n in (14, 15, 1000)] == [FLAG_RECORD, 0, 0]
    assert state.writing_paused_at(15) and not state.writing_paused_at(14)
    gate.resume_writing(30)
    assert [state.recording_flags(n) for n in (15, 29, 30)] == [0, 0, FLAG_RECORD]
    gate.end_take_at(20)  # a stop while paused: the end wins over the pause
    assert state.recording_flags(20) == FLAG_FINISH
    gate.clear_take()
    assert not state.writing_paused_at(15) and state.recording_flags(15) == 0
    gate.begin_take(40)  # a new take starts writing, whatever the last one did
    gate.pause_writing(45)
    gate.begin_take(50)
    assert state.recording_flags(60) == FLAG_RECORD


def test_segment_arithmetic():
    segments = [(100, 105), (120, None)]
    assert list(zip(range(8), frame_numbers(segments), strict=False)) == [
        (0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 120), (6, 121), (7, 122)]
    assert [frame_at(segments, k) for k in (0, 4, 5, 50)] == [100, 104, 120, 165]
    assert frame_at([(100, 105)], 5) is None
    assert recorded(segments, 103) == 3
    assert recorded(segments, 110) == 5  # the pause counts nothing
    assert recorded(segments, 125) == 10
    assert leading(segments, 3) == [[100, 103]]
    assert leading(segments, 8) == [[100, 105], [120, 123]]
    assert leading(segments, 0) == []
    assert as_array([(1, 3), (7, 9)]).tolist() == [1, 2, 7, 8]


def test_the_manifests_segments_are_read_or_refused_by_name():
    assert manifest_segments({"first_frame": 7}) == [(7, None)]  # an older recording
    assert manifest_segments({"segments": [[0, 5], [9, None]]}) == [(0, 5), (9, None)]
    for bad, message in (
        ("x", "not a list"),
        ([[0]], "segment #0 is [0]"),
        ([[5, 5]], "segment #0 [5, 5] is empty"),
        ([[0, None], [9, 12]], "segment #1 [9, 12] does not follow"),
        ([[0, 5], [3, 9]], "segment #1 [3, 9] does not follow"),
        ([[0, True]], "segment #0 is [0, True]"),
    ):
        with pytest.raises(RecordingError, match=message.replace("[", r"\[")):
            manifest_segments({"first_frame": 0, "segments": bad})


def test_a_sensor_track_plays_the_segments_back_to_back():
    """Samples taken during a pause are left out; each segment's samples are placed after
    the frames of the segments before it (30 fps: 33.3 ms a frame)."""
    header = ["sample", "monotonic_ns", "utc", "frame", "x"]
    rows = [[str(k), str(1_000_000_000 + k * 10_000_000), "t", str(frame), "0"]
            for k, frame in enumerate([100, 101, 103, 106, 110, 120, 121])]
    packets = track_packets(header, rows, 30.0, 100, [(100, 105), (120, 130)])
    assert [p.payload.split(b",")[3] for p in packets] == [b"100", b"101", b"103", b"120",
                                                           b"121"]
    assert [p.pts for p in packets] == [0, 10, 20, 167, 177]  # 5 frames = 166.7 ms
    assert track_packets(header, rows, 30.0, 100) == track_packets(
        header, rows, 30.0, 100, [(100, None)])  # no segments: one from first_frame on
