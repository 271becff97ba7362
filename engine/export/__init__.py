"""Export a finished recording for the tools its users already trust.

`export_take(folder, to)` writes the take in `folder` as one of FORMATS, each with the
library or the layout that format's users rely on, and returns what it wrote:

- freemocap, skellycam: the folder SkellyCam records and FreeMoCap opens, the videos as
  `synchronized_videos/*.mp4` (engine/export/mp4.py: remuxed H.264 / H.265, MJPEG and
  FFV1 re-encoded) with SkellyCam's timestamps and info files (skellycam.py); the two
  differ in the videos' names, each the one its tool parses (freemocap.py).
- anipose: an anipose project, the take a session whose `videos-raw` holds
  `<take>-camA.mp4`, ... and the config.toml that tells anipose so (anipose.py).
- nwb: a Neurodata Without Borders file written by pynwb (the `nwb` extra), the videos
  beside it as external files timed by their capture times, the sensors as TimeSeries.
- mkv: one Matroska file with a track per camera (engine/recording/finalize.py's
  write_multitrack, as the rig's `multitrack` option makes it).

Without `output`, the export goes inside the take's own folder, `exports/<format>/`, so
it moves with the take. Nothing is overwritten: an export whose product exists already
is refused, and one that fails leaves nothing behind (staging.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av

from engine.export.anipose import export_anipose
from engine.export.errors import ExportError
from engine.export.freemocap import export_freemocap
from engine.export.mkv import export_mkv
from engine.export.nwb import export_nwb
from engine.export.skellycam import export_skellycam
from engine.export.take import FinishedTake, read_take
from engine.recording.errors import RecordingError
from engine.recording.progress import Progress
from engine.sensors.base import SensorError

FORMATS: tuple[str, ...] = ("freemocap", "skellycam", "anipose", "nwb", "mkv")
_EXPORTERS: dict[str, Callable[[FinishedTake, Path, Progress | None], Path]] = {
    "freemocap": export_freemocap, "skellycam": export_skellycam, "anipose": export_anipose,
    "nwb": export_nwb, "mkv": export_mkv,
}
EXPORTS_FOLDER = "exports"

__all__ = ["EXPORTS_FOLDER", "FORMATS", "ExportError", "Progress", "default_output",
           "export_take"]


def default_output(folder: Path, to: str) -> Path:
    """Where an export goes unless told: inside the take's folder, exports/<format>/."""
    return Path(folder) / EXPORTS_FOLDER / to


def export_take(folder: Path, to: str, output: Path | None = None,
                progress: Progress | None = None) -> Path:
    """Export the finished recording in `folder` as `to` (one of FORMATS) into the folder
    `output` (default: default_output); return the path written: the recording folder
    (freemocap, skellycam), the anipose session folder, the .nwb or the .mkv file.
    ExportError, naming the take, the format and the problem, when it cannot."""
    folder = Path(folder)
    exporter = _EXPORTERS.get(to)
    if exporter is None:
        raise ExportError(f"cannot export {folder} as {to!r}: the formats are "
                          f"{', '.join(FORMATS)}")
    target = Path(output) if output is not None else default_output(folder, to)
    try:
        take = read_take(folder)
        written = exporter(take, target, progress)
    except ExportError as exc:
        raise ExportError(f"cannot export {folder} as {to}: {exc}") from exc
    except (RecordingError, SensorError, av.FFmpegError, OSError, ValueError) as exc:
        raise ExportError(f"cannot export {folder} as {to}: {exc}") from exc
    if progress is not None:
        progress(1.0)
    return written

