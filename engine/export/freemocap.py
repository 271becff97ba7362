"""A take as a FreeMoCap recording: SkellyCam's folder (skellycam.py), each video named
`<take>.camera<n>.mp4`.

FreeMoCap lists `synchronized_videos/*.mp4` (get_video_paths.py, sorted by name) and
takes each camera's number from its file name with `(?:camera|cam)[._\\-]?(\\d+)`
(extract_camera_id_from_video_path.py), which a camera id chosen in the rig ("left",
"top") would not give; `camera<n>` gives it for any id, n being the camera's place in the
take. SkellyCam's own parser reads the same name (its cam-prefix fallback).
"""

from __future__ import annotations

from pathlib import Path

from engine.export.skellycam import write_recording_folder
from engine.export.take import FinishedTake, TakeCamera
from engine.recording.progress import Progress


def freemocap_video_stem(take: FinishedTake, position: int, camera: TakeCamera) -> str:
    return f"{take.name}.camera{position}"


def export_freemocap(take: FinishedTake, output: Path, progress: Progress | None) -> Path:
    """The take as the FreeMoCap recording folder output/<take>/; returns that folder."""
    return write_recording_folder(take, output, progress, freemocap_video_stem)
