"""README.txt: what a recording folder's files and columns hold, for whoever opens it.

Written when the take starts, so a take a crash ended has one too. Its column lists come
from the constants the files are written with (the timestamps' COLUMN_MEANINGS, the
sensors' STAMP_COLUMN_MEANINGS), so it cannot name a column the files lack or miss one
they have.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine.durable import fsync_path
from engine.recording.errors import RecordingError
from engine.recording.finalize import LOCK_NAME, MULTITRACK_NAME
from engine.recording.manifest import MANIFEST_NAME
from engine.recording.segments import MANIFEST_KEY as SEGMENTS_KEY
from engine.recording.sync_report import SYNC_REPORT_NAME
from engine.recording.sync_tolerance import MANIFEST_KEY as SYNC_TOLERANCE_KEY
from engine.recording.timestamps import COLUMN_MEANINGS, TIMESTAMP_COLUMNS
from engine.sensors.base import STAMP_COLUMN_MEANINGS, STAMP_COLUMNS
from engine.sensors.sidecar import SIDECAR_FOLDER

README_NAME = "README.txt"
_WIDTH = 88
_INDENT = "    "

# recording.json's keys; a camera entry's under "cameras".
MANIFEST_MEANINGS: dict[str, str] = {
    "format": "the manifest's format version",
    "name": "the take's name (its folder's)",
    "status": "recording while the take is written (one a crash left so is finished by "
              "`recorder-engine recover`, which every engine runs at start); then finalized, "
              "interrupted (a camera or writer failed, or nothing was recorded: the files "
              "hold what every camera has) or recovered",
    "layout": "files: each camera written straight into its final file",
    "started_utc": "when the take started (UTC)",
    "stopped_utc": "when it stopped (UTC; after a crash, its last kept frame's time)",
    "codec": "the take's video codec (h264, mjpeg or ffv1; a camera recorded by copy keeps "
             "its own)",
    "fps": "the nominal frame rate of every video: the group runs at its slowest camera's",
    "multitrack": f"true: {MULTITRACK_NAME} is made too",
    "first_frame": "the frame-set number of the first recorded frame set",
    "last_frame": "the frame-set number after the last recorded one",
    SEGMENTS_KEY: "the frame-set numbers recorded, as [first, last) ranges; a gap between two "
                "is a writing pause. Video frame k is the k-th number they name",
    "cameras": "one entry per camera (below)",
    "sync": f"the summary of {SYNC_REPORT_NAME}",
    SYNC_TOLERANCE_KEY: "how far apart the cameras may capture a frame set before verify "
                         "fails the take",
    "errors": "what went wrong, in words",
    "salvage": "an interrupted or recovered take: frames_kept, and frames_dropped per "
               "camera (cut, or undecodable, to keep every camera at the same count)",
    "session": "auto-resume: the session's id, this take's number in it and the previous "
               "take's name",
    "sensors": "one entry per sensor: name, source, samples, file (its CSV), track (its "
               "MKV) and error",
}
CAMERA_MEANINGS: dict[str, str] = {
    "id": "the camera's name",
    "source": "where its frames came from (passwords masked)",
    "synthetic": "true for a synthetic test camera (its frames carry a burned-in stamp)",
    "index": "its place in the group",
    "settings": "the settings it actually ran with",
    "capture_clock": "where its capture_ns comes from: source (the source's own clock), "
                     "driver (V4L2's buffer stamp), rtcp or rtp (an RTSP stream's RTP times "
                     "mapped by sender reports, or by the fastest frame), arrival_fit (the "
                     "camera's steady clock fitted under its frames' arrivals: an MJPEG or "
                     "other untimed stream), arrival (when the frame arrived), trigger (when "
                     "its software trigger fired) or "
                     "after_grab (the source cannot tell: after_grab_ns stands in)",
    "recorded_as": "encode (re-encoded) or copy (the camera's own H.264/H.265 packets)",
    "pix_fmt": "the video's pixel format",
    "encoder": "the FFmpeg encoder used",
    "preset": "x264's preset",
    "encoder_fallback": "why the hardware encoder asked for was not used",
    "file": "its video file",
    "timestamps": "its timestamps file",
    "frames": "frames in its video, the same for every camera (null until the take is "
              "finished)",
    "dropped": "frames the camera delivered during the take that no frame set took",
}
# sync_report.json's keys.
SYNC_REPORT_MEANINGS: dict[str, str] = {
    "frame_sets": "frame sets measured (those every camera has)",
    "p50_ms": "median inter-camera capture spread of a frame set (latest minus earliest "
              "stamp, ms)",
    "p99_ms": "99th percentile of that spread (ms)",
    "max_ms": "its largest (ms)",
    "tolerance_ms": "the sync tolerance it was judged against (ms)",
    "over_tolerance": "frame sets that spread further",
    "stamp": "the column it was computed from: capture_ns (after_grab_ns for recordings "
             "made before capture_ns)",
    "mean_offset_ms": "each camera's mean offset from its frame sets' median (ms; + is "
                      "later)",
    "cameras": "per camera: frames, and repeated (frame sets with no new frame)",
    "device_clocks": "cameras with a clock of their own: how it maps onto the monotonic "
                     "clock (offset, drift, delivery delays)",
    "exposure": "the spread of the exposures, from those cameras' mapped clocks and the "
                "others' capture_ns",
}


def readme_text(name: str, camera_ids: Sequence[str]) -> str:
    """The README of take `name` recording cameras `camera_ids`."""
    videos = ", ".join(f"{camera}.mkv" for camera in camera_ids)
    timestamps = ", ".join(f"timestamps/{camera}.csv" for camera in camera_ids)
    sections = [
        f"Recording {name!r}: what the files of this folder hold.",
        _section(MANIFEST_NAME,
                 "The manifest (JSON). Frame-set numbers are the capture group's: they "
                 "count from when its cameras started, not from this take.",
                 MANIFEST_MEANINGS, "Each entry of cameras:", CAMERA_MEANINGS),
        _section(videos,
                 "One video per camera (Matroska), all at the nominal frame rate fps and "
                 "all holding the same number of frames: video frame k of every file is "
                 "the same frame set. A frame's time in the video is its index / fps; when "
                 "it was really captured is in its timestamps file."),
        _section(timestamps,
                 "One row per video frame, in the video's order, after a header line. "
                 "Times ending in _ns are integer nanoseconds. Columns:",
                 {column: COLUMN_MEANINGS[column] for column in TIMESTAMP_COLUMNS},
                 "Row k of every camera's file is one frame set: the same frame_index and "
                 "the same frame."),
        _section(SYNC_REPORT_NAME,
                 "How far apart in time the cameras captured each frame set (written when "
                 "the take is finished):", SYNC_REPORT_MEANINGS),
        _section(f"{SIDECAR_FOLDER}/<sensor>.csv (when the rig records sensors)",
                 "One row per sample, after a header line: these columns, then the "
                 "sensor's own fields.",
                 {column: STAMP_COLUMN_MEANINGS[column] for column in STAMP_COLUMNS}),
        _section(f"{SIDECAR_FOLDER}/<sensor>.mkv",
                 "The same samples as a subtitle track on the videos' time line (each "
                 "sample's CSV row is its text)."),
        _section(f"{MULTITRACK_NAME} (rig option multitrack)",
                 "A copy of every camera's video as one track each, made after the stop."),
        _section(LOCK_NAME,
                 "Only while the take is being written: it is removed when the take is "
                 "finished, or by recover after a crash."),
    ]
    return "\n\n".join(sections) + "\n"


def write_readme(folder: Path, camera_ids: Sequence[str]) -> None:
    """Write folder/README.txt and make it durable; RecordingError naming it if that fails."""
    path = Path(folder) / README_NAME
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(readme_text(Path(folder).name, camera_ids))
            file.flush()
            os.fsync(file.fileno())
        fsync_path(path.parent)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _section(title: str, *parts: str | Mapping[str, str]) -> str:
    """A title, then each part indented under it: a paragraph, or a listing of keys each
    followed by what it holds."""
    lines = [title]
    for part in parts:
        if isinstance(part, str):
            lines.extend(textwrap.wrap(part, _WIDTH, initial_indent=_INDENT,
                                       subsequent_indent=_INDENT))
            continue
        for key, meaning in part.items():
            lines.append(f"{_INDENT}{key}")
            lines.extend(textwrap.wrap(meaning, _WIDTH, initial_indent=_INDENT * 2,
                                       subsequent_indent=_INDENT * 2))
    return "\n".join(lines)
