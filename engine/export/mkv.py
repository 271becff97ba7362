"""A take as one Matroska file with a video track per camera, each titled with the
camera's id.

The recorder's own multitrack writer makes it (engine/recording/finalize.py's
write_multitrack, what the rig's `multitrack` option runs after a stop): every camera's
packets as recorded (no re-encoding, any codec), frame k of every track at k / fps,
interleaved frame set by frame set, read back before it is kept. The capture times stay
in the take's timestamps files; a player shows the tracks as the camera angles of one
video (mpv: `--vid=2`, VLC: Video > Video Track).
"""

from __future__ import annotations

from pathlib import Path

from engine.export.staging import staged
from engine.export.take import FinishedTake
from engine.recording.finalize import write_multitrack
from engine.recording.progress import Progress
from engine.recording.segments import manifest_segments
from engine.recording.take_scan import scan_camera


def export_mkv(take: FinishedTake, output: Path, progress: Progress | None) -> Path:
    """The take as output/<take>.mkv; returns that file."""
    segments = manifest_segments(take.manifest)
    cameras = [scan_camera(take.folder, camera.entry, segments, take.fps)
               for camera in take.cameras]
    name = f"{take.name}.mkv"
    with staged(output, [name]) as staging:
        write_multitrack(staging / name, cameras, take.frames, take.fps, progress)
    return output / name
