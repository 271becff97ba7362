"""A take as an anipose session: `<take>/videos-raw/<take>-camA.mp4`, ... in an anipose
project whose config.toml says how to find them.

anipose (lambdaloop/anipose) lists a session's videos as `videos-raw/*.<video_extension>`
(pipeline.videos_raw; video_extension defaults to avi) and takes each one's camera from
its name with `[triangulation] cam_regex`, which has no default: its documentation's
names (`2019-08-02-vid01-camA.avi`) fit `-cam([A-Z])`. What the regex leaves of a name
is the trial, so a take's videos make one trial named after the take. The videos are
MP4s (engine/export/mp4.py: H.264 as recorded, no second generation of loss), which
anipose reads through OpenCV and DeepLabCut as it reads AVI; so anipose's default
config does not find them, and the export writes the project's config.toml (output
folder) where there is none: nesting 1 (a session per folder), video_extension "mp4",
cam_regex '-cam([A-Z])'. A config.toml already there is the user's project: it is left as
it is, and the export is refused if it says otherwise on those keys. Cameras take the
letters A, B, ... in the take's order (at most 26); the session's camera_letters.csv
says which camera is which, and its timestamps/<video stem>.csv is the camera's
timestamps file as recorded (row k: video frame k; anipose reads neither). Calibration
videos and the DeepLabCut model are the user's.
"""

from __future__ import annotations

import csv
import re
import shutil
import string
import tomllib
from pathlib import Path
from typing import Any

from engine.export.errors import ExportError
from engine.export.mp4 import write_mp4
from engine.export.staging import staged
from engine.export.take import FinishedTake
from engine.recording.progress import Progress, share

CAM_REGEX = "-cam([A-Z])"
VIDEOS_RAW = "videos-raw"
VIDEO_EXTENSION = "mp4"
NESTING = 1
CONFIG_NAME = "config.toml"
LETTERS_NAME = "camera_letters.csv"
TIMESTAMPS = "timestamps"
# What a project's config.toml must say for anipose to find the videos, with anipose's
# own default where it has one (None: it has none).
REQUIRED: dict[tuple[str, ...], tuple[Any, Any]] = {
    ("nesting",): (NESTING, None),
    ("video_extension",): (VIDEO_EXTENSION, "avi"),
    ("pipeline", "videos_raw"): (VIDEOS_RAW, "videos-raw"),
    ("triangulation", "cam_regex"): (CAM_REGEX, None),
}
CONFIG = f"""\
# anipose project written by `recorder-engine export --to anipose`: each session is a
# folder here (nesting = 1) whose {VIDEOS_RAW}/ holds <take>-camA.{VIDEO_EXTENSION}, ...
# Add model_folder (your DeepLabCut project) and the [calibration] board of your rig.
nesting = {NESTING}
video_extension = "{VIDEO_EXTENSION}"

[pipeline]
videos_raw = "{VIDEOS_RAW}"

[triangulation]
cam_regex = '{CAM_REGEX}'
"""


def export_anipose(take: FinishedTake, output: Path, progress: Progress | None) -> Path:
    """The take as the session output/<take>/ of the anipose project `output`; returns
    the session folder."""
    if len(take.cameras) > len(string.ascii_uppercase):
        raise ExportError(f"anipose's cam_regex {CAM_REGEX} names at most "
                          f"{len(string.ascii_uppercase)} cameras; the take has "
                          f"{len(take.cameras)}")
    config = output / CONFIG_NAME
    if config.exists():
        _check_config(config)
    names = [take.name] if config.exists() else [take.name, CONFIG_NAME]
    with staged(output, names) as staging:
        videos, timestamps = staging / take.name / VIDEOS_RAW, staging / take.name / TIMESTAMPS
        videos.mkdir(parents=True)
        timestamps.mkdir()
        letters = []
        for position, camera in enumerate(take.cameras):
            letter = string.ascii_uppercase[position]
            stem = f"{take.name}-cam{letter}"
            found = re.search(CAM_REGEX, stem)  # as anipose's get_cam_name reads it
            if found is None or found.group(1) != letter:
                raise ExportError(f"anipose would read the camera of {stem!r} as "
                                  f"{found and found.group(1)!r}: rename the take")
            step = share(progress, position / len(take.cameras),
                         (position + 1) / len(take.cameras))
            video = write_mp4(camera.video, videos / f"{stem}.{VIDEO_EXTENSION}",
                              take.frames, take.fps, step)
            shutil.copyfile(take.folder / camera.entry["timestamps"], timestamps / f"{stem}.csv")
            letters.append((letter, camera.id, camera.entry.get("source", ""), video.how))
        with open(staging / take.name / LETTERS_NAME, "w", encoding="utf-8",
                  newline="") as file:
            writer = csv.writer(file)
            writer.writerow(("letter", "camera", "source", "video"))
            writer.writerows(letters)
        if CONFIG_NAME in names:
            (staging / CONFIG_NAME).write_text(CONFIG, encoding="utf-8")
    return output / take.name


def _check_config(path: Path) -> None:
    """ExportError unless the project's config.toml lets anipose find these videos."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ExportError(f"cannot read the anipose project's {path}: {exc}") from exc
    for keys, (wanted, default) in REQUIRED.items():
        value: Any = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if (default if value is None else value) != wanted:
            said = "does not set it" if value is None else f"sets {value!r}"
            raise ExportError(f"the anipose project's {path} {said} for {'.'.join(keys)}; "
                              f"these videos need {wanted!r}")
