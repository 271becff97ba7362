"""A take as a Neurodata Without Borders file, written by pynwb, its videos beside it.

    <take>.nwb
    <take>_videos/cam0.mkv, ...   the recorded files, hard-linked (else copied)

Each camera is an ImageSeries of format "external": its video (external_file, relative
to the .nwb; starting_frame 0) and per frame its capture time (the timestamps file's
capture_ns) in seconds from the session's start (session_start_time, also the
timestamps' reference). That is the take's UTC start (the manifest's started_utc), or
the take's first capture where it came before that start (a free-running camera's first
frame may be up to a frame period older than the frame set that took it; NWB wants no
time below zero), to the microsecond. Each sensor stream is a TimeSeries: a row per
sample, a column per field (unit "n.a.": a sensor declares none; the description names
the columns), timed by the sample's arrival. Cameras and sensors are Devices described
by the manifest (source, size, rate, capture clock, encoder); the file says it was
written by recorder-workstation. NWB's validator (pynwb.validate) checks the file before
it is kept.

pynwb (with h5py) is an optional extra, imported only here: without it, ExportError
says to `pip install 'recorder-workstation[nwb]'`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine import __version__
from engine.export.errors import ExportError
from engine.export.staging import link_or_copy, staged
from engine.export.take import FinishedTake, TakeCamera, TakeSensor
from engine.recording.progress import Progress

EXTRA = "pip install 'recorder-workstation[nwb]'"
SENSOR_UNIT = "n.a."


def export_nwb(take: FinishedTake, output: Path, progress: Progress | None) -> Path:
    """The take as output/<take>.nwb with its videos in output/<take>_videos/; returns
    the .nwb file."""
    try:
        import pynwb
        from pynwb.image import ImageSeries
    except ImportError as exc:
        raise ExportError(f"NWB files are written by pynwb, which is not installed: "
                          f"{EXTRA}") from exc
    name, videos = f"{take.name}.nwb", f"{take.name}_videos"
    sensors = [sensor for sensor in take.sensors() if len(sensor.monotonic_ns)]
    session_start, origin_ns = _session_start(take, sensors)

    def seconds(monotonic_ns: np.ndarray) -> np.ndarray:
        return (monotonic_ns - origin_ns) / 1e9

    with staged(output, [name, videos]) as staging:
        (staging / videos).mkdir()
        nwbfile = pynwb.NWBFile(
            session_description=_session_description(take),
            identifier=str(uuid.uuid4()),
            session_start_time=session_start,
            session_id=take.name,
            notes=json.dumps(_notes(take), indent=1),
            was_generated_by=[["recorder-workstation", __version__]],
        )
        for position, camera in enumerate(take.cameras):
            link_or_copy(camera.video, staging / videos / camera.video.name)
            device = nwbfile.create_device(name=camera.id, description=_camera_device(camera))
            nwbfile.add_acquisition(ImageSeries(
                name=camera.id,
                description=f"camera {camera.id}: frame k of its video was captured at "
                            "timestamps[k]; frame k of every camera's video is one frame set",
                format="external",
                external_file=[f"{videos}/{camera.video.name}"],
                starting_frame=[0],
                dimension=list(_size(camera.video)),
                timestamps=seconds(camera.capture_ns),
                device=device,
            ))
            if progress is not None:
                progress(0.5 * (position + 1) / len(take.cameras))
        taken = {camera.id for camera in take.cameras}
        for sensor in sensors:  # one without samples has nothing to time: the notes list it
            series = sensor.name if sensor.name not in taken else f"{sensor.name}_sensor"
            taken.add(series)
            nwbfile.create_device(name=series, description=_sensor_device(sensor))
            nwbfile.add_acquisition(pynwb.TimeSeries(
                name=series,
                description=f"sensor {sensor.name} ({sensor.source}): one row per sample "
                            f"as it arrived, columns {', '.join(sensor.fields)}",
                data=sensor.values,
                unit=SENSOR_UNIT,
                timestamps=seconds(sensor.monotonic_ns),
                comments=f"columns: {', '.join(sensor.fields)}",
            ))
        with pynwb.NWBHDF5IO(str(staging / name), "w") as io:
            io.write(nwbfile)
        if progress is not None:
            progress(0.8)
        errors = pynwb.validate(path=str(staging / name))
        if errors:
            raise ExportError("NWB's validator rejects the file written: "
                              + "; ".join(str(error) for error in errors[:5]))
    return output / name


def _session_start(take: FinishedTake, sensors: list[TakeSensor]) -> tuple[datetime, int]:
    """When the session starts, in UTC and on the monotonic clock: the take's start, or
    the whole microsecond at or before its first capture or sample, where that came
    earlier (session_start_time holds microseconds; NWB wants no time below zero)."""
    earliest = min([take.start_ns, *(int(camera.capture_ns.min()) for camera in take.cameras),
                    *(int(sensor.monotonic_ns.min()) for sensor in sensors)])
    lead_us = -(-(take.start_ns - earliest) // 1000)
    return take.start_utc - timedelta(microseconds=lead_us), take.start_ns - lead_us * 1000


def _session_description(take: FinishedTake) -> str:
    count = len(take.manifest.get("sensors") or [])
    sensors = f" and {count} sensor stream(s)" if count else ""
    return (f"recorder-workstation take {take.name}: {len(take.cameras)} camera(s) recorded "
            f"in lock-step at {take.fps:g} fps{sensors}, {take.frames} frame sets")


def _notes(take: FinishedTake) -> dict[str, Any]:
    """What the manifest says of the take as a whole: its frame sets, sync, sensors."""
    manifest = take.manifest
    return {
        "exported_from": str(take.folder),
        "status": manifest.get("status"),
        "codec": manifest.get("codec"),
        "segments": manifest.get("segments"),
        "sync": manifest.get("sync"),
        "sensors": [{key: entry.get(key) for key in ("name", "source", "samples", "error")}
                    for entry in manifest.get("sensors") or []],
        "errors": manifest.get("errors") or [],
    }


def _camera_device(camera: TakeCamera) -> str:
    entry = camera.entry
    settings = entry.get("settings") or {}
    encoder = entry.get("encoder") or entry.get("recorded_as") or "?"
    return (f"camera {camera.id}: source {entry.get('source')}, "
            f"{settings.get('width')}x{settings.get('height')} at {settings.get('fps')} fps; "
            f"capture times from its {entry.get('capture_clock', 'after_grab')} clock; "
            f"recorded as {entry.get('recorded_as', 'encode')} ({encoder}, "
            f"{entry.get('pix_fmt', '?')}); settings {json.dumps(settings, sort_keys=True)}")


def _sensor_device(sensor: TakeSensor) -> str:
    return (f"sensor {sensor.name}: source {sensor.source}, fields "
            f"{', '.join(sensor.fields)}, {len(sensor.monotonic_ns)} samples")


def _size(video: Path) -> tuple[int, int]:
    """A video's width and height in pixels, as its stream says."""
    with av.open(str(video)) as container:
        context = container.streams.video[0].codec_context
        return context.width, context.height
