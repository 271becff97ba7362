"""A take as a SkellyCam recording folder, the layout SkellyCam writes and FreeMoCap opens.

    <take>/
      <take>_info.json                  SkellyCam's RecordingInfo: name, folder, uuid, a
                                        camera_configs entry per camera, and `videos`
                                        (camera id -> its file in synchronized_videos)
      synchronized_videos/
        <take>.id-<camera>.idx-<n>.mp4  one per camera, every one the same frames
        timestamps/
          <take>_timestamps.csv         one row per frame set (SkellyCam's multi-frame
                                        columns: number, time from the take's start,
                                        monotonic ns, UTC, local time, the interval from
                                        the previous set and its rate, the cameras' spread)
          <take>_stats.json             framerate_stats, frame_duration_stats (ms) and
                                        inter_camera_grab_range_ms: median, mean, ...
          camera_timestamps/
            <video stem>.timestamps.csv one row per frame of that camera
(names from SkellyCam's recording_info.py, parse_video_filename.py and its timestamp
dtypes; FreeMoCap's recording_framerate.py globs synchronized_videos/timestamps/
*_timestamps.csv for `from_previous.framerate.hz`). A time is the frame's capture time
(a set's: the mean of its cameras'), in seconds from the take's start; the monotonic
column is the machine's CLOCK_MONOTONIC, the clock SkellyCam's perf_counter_ns reads on
Linux. SkellyCam's per-stage lifespan columns have no counterpart here and are left out.
The videos are MP4s (engine/export/mp4.py); only their names differ between the
`skellycam` format (SkellyCam's canonical name, which keeps the camera's id) and the
`freemocap` one (freemocap.py).
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.export.mp4 import Mp4Video, write_mp4
from engine.export.staging import staged
from engine.export.take import FinishedTake, TakeCamera
from engine.recording.progress import Progress, share

VIDEOS_FOLDER = "synchronized_videos"
TIMESTAMPS_FOLDER = f"{VIDEOS_FOLDER}/timestamps"
CAMERA_TIMESTAMPS_FOLDER = f"{TIMESTAMPS_FOLDER}/camera_timestamps"
MULTI_FRAME_COLUMNS = (
    "multiframe_number", "timestamp.from_recording_start.sec", "timestamp.perf_counter_ns.ns",
    "timestamp.utc.seconds", "timestamp.local.iso8601", "from_previous.frame_duration.ms",
    "from_previous.framerate.hz", "inter_camera.frame_grab_range.ms",
)
CAMERA_COLUMNS = (
    "recording_frame_number", "connection_frame_number", "timestamp.from_recording_start.sec",
    "timestamp.utc.seconds", "timestamp.local.iso8601", "timestamp.perf_counter_ns.ns",
    "from_previous.frame_duration.ms", "from_previous.framerate.hz",
)
_FOURCC = {"hevc": "hev1"}  # MP4's sample entry of each codec; anything else becomes H.264

VideoStem = Callable[[FinishedTake, int, TakeCamera], str]


def skellycam_video_stem(take: FinishedTake, position: int, camera: TakeCamera) -> str:
    """SkellyCam's canonical `<recording>.id-<camera id>.idx-<index>` (its
    VIDEO_FILENAME_RE), the id made of letters, digits, '_' and '-' only."""
    return f"{take.name}.id-{re.sub(r'[^A-Za-z0-9_-]', '_', camera.id)}.idx-{position}"


def export_skellycam(take: FinishedTake, output: Path, progress: Progress | None) -> Path:
    """The take as the SkellyCam recording folder output/<take>/; returns that folder."""
    return write_recording_folder(take, output, progress, skellycam_video_stem)


def write_recording_folder(take: FinishedTake, output: Path, progress: Progress | None,
                           video_stem: VideoStem) -> Path:
    """Write output/<take>/ in SkellyCam's layout, naming each video by video_stem."""
    stems = [video_stem(take, position, camera) for position, camera in enumerate(take.cameras)]
    with staged(output, [take.name]) as staging:
        folder = staging / take.name
        for path in (VIDEOS_FOLDER, TIMESTAMPS_FOLDER, CAMERA_TIMESTAMPS_FOLDER):
            (folder / path).mkdir(parents=True)
        videos: list[Mp4Video] = []
        for position, (camera, stem) in enumerate(zip(take.cameras, stems, strict=True)):
            step = share(progress, 0.95 * position / len(stems),
                         0.95 * (position + 1) / len(stems))
            videos.append(write_mp4(camera.video, folder / VIDEOS_FOLDER / f"{stem}.mp4",
                                    take.frames, take.fps, step))
            _write_rows(folder / CAMERA_TIMESTAMPS_FOLDER / f"{stem}.timestamps.csv",
                        CAMERA_COLUMNS, _camera_rows(take, camera))
        sets = np.mean([camera.capture_ns for camera in take.cameras], axis=0)
        _write_rows(folder / TIMESTAMPS_FOLDER / f"{take.name}_timestamps.csv",
                    MULTI_FRAME_COLUMNS, _multi_frame_rows(take, sets))
        _write_json(folder / TIMESTAMPS_FOLDER / f"{take.name}_stats.json",
                    _stats(take, sets))
        _write_json(folder / f"{take.name}_info.json",
                    _recording_info(take, output, stems, videos))
    return output / take.name


def _camera_rows(take: FinishedTake, camera: TakeCamera) -> list[list[Any]]:
    seconds = take.seconds(camera.capture_ns)
    durations, rates = _from_previous(camera.capture_ns.astype(np.float64))
    return [[index, int(number), second, utc, local, int(stamp), duration, rate]
            for index, (number, second, utc, local, stamp, duration, rate) in enumerate(zip(
                camera.frame_numbers, seconds, take.utc_seconds(camera.capture_ns),
                _local_texts(take, camera.capture_ns), camera.capture_ns, durations, rates,
                strict=True))]


def _multi_frame_rows(take: FinishedTake, sets: np.ndarray) -> list[list[Any]]:
    stamps = np.stack([camera.capture_ns for camera in take.cameras])
    spread_ms = (stamps.max(axis=0) - stamps.min(axis=0)) / 1e6
    durations, rates = _from_previous(sets)
    return [list(row) for row in zip(
        range(take.frames), take.seconds(sets), sets, take.utc_seconds(sets),
        _local_texts(take, sets), durations, rates, spread_ms, strict=True)]


def _from_previous(stamps_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's interval from the previous one (ms) and its rate (Hz); NaN for the
    first, and a rate of NaN where the interval is not positive (a repeated frame)."""
    durations = np.full(len(stamps_ns), np.nan)
    durations[1:] = np.diff(stamps_ns) / 1e6
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(durations > 0, 1000.0 / durations, np.nan)
    return durations, rates


def _local_texts(take: FinishedTake, stamps_ns: np.ndarray) -> list[str]:
    return [datetime.fromtimestamp(utc).astimezone().isoformat()
            for utc in take.utc_seconds(stamps_ns)]


def _stats(take: FinishedTake, sets: np.ndarray) -> dict[str, Any]:
    durations, rates = _from_previous(sets)
    stamps = np.stack([camera.capture_ns for camera in take.cameras])
    return {
        "recording_name": take.name,
        "number_of_cameras": len(take.cameras),
        "number_of_frames": take.frames,
        "total_duration_sec": float(take.seconds(sets)[-1] - take.seconds(sets)[0]),
        "framerate_stats": _describe(rates, "Hz"),
        "frame_duration_stats": _describe(durations, "ms"),
        "inter_camera_grab_range_ms": _describe((stamps.max(0) - stamps.min(0)) / 1e6, "ms"),
    }


def _describe(values: np.ndarray, units: str) -> dict[str, Any]:
    known = values[np.isfinite(values)]
    if not len(known):
        return {"units": units, "samples": 0}
    return {"units": units, "samples": len(known), "median": float(np.median(known)),
            "mean": float(np.mean(known)), "standard_deviation": float(np.std(known)),
            "min": float(np.min(known)), "max": float(np.max(known))}


def _recording_info(take: FinishedTake, output: Path, stems: list[str],
                    videos: list[Mp4Video]) -> dict[str, Any]:
    configs, files = {}, {}
    for position, (camera, stem, video) in enumerate(
            zip(take.cameras, stems, videos, strict=True)):
        settings = camera.entry.get("settings") or {}
        configs[camera.id] = {
            "camera_id": camera.id, "camera_index": position, "camera_name": camera.id,
            "use_this_camera": True,
            "resolution": {"width": video.width, "height": video.height},
            "color_channels": int(settings.get("channels", 3)),
            "framerate": take.fps, "video_file_extension": "mp4",
            "writer_fourcc": _FOURCC.get(video.recorded_codec, "avc1")
            if video.how == "remux" else "avc1",
        }
        files[camera.id] = f"{stem}.mp4"
    return {
        "recording_name": take.name,
        "recording_directory": str(output),
        "recording_uuid": str(uuid.uuid4()),
        "mic_device_index": -1,
        "camera_configs": configs,
        "videos": files,
        "exported_from": {
            "folder": str(take.folder), "started_utc": take.manifest.get("started_utc"),
            "codec": take.manifest.get("codec"),
            "videos": {camera.id: f"{video.how} of {video.recorded_codec}"
                       for camera, video in zip(take.cameras, videos, strict=True)},
        },
    }


def _write_rows(path: Path, header: tuple[str, ...], rows: list[list[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([_text(value) for value in row] for row in rows)


def _text(value: Any) -> str:
    """A CSV cell: floats in full (repr), NaN as pandas writes it (empty)."""
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else repr(float(value))
    return str(value)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
