"""The sync a recording really achieved, decoded from the pictures themselves.

Same count is not same moment: frame k of two files can show moments a second apart
while every count and timestamp agrees. When the sources burned a clock stamp into each
frame as they made it (engine/sources/clockstamp.py), decoding every recorded frame
tells, per frame set k, how far apart the moments shown are, whether every camera shows
the very same source frame, and how long each frame took from being made to being
grabbed (the timestamps' after_grab_ns minus the stamp: both CLOCK_MONOTONIC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.recording.errors import RecordingError
from engine.recording.manifest import read_manifest
from engine.recording.stamp_band import top_rows
from engine.recording.timestamps import read_timestamps
from engine.sources import clockstamp

UNREAD = -1  # a frame whose stamp did not decode


@dataclass(frozen=True)
class StampSync:
    """Per camera (rows, in manifest order) and frame set (columns): the stamps decoded
    from the pictures and the grab stamps recorded for them. UNREAD where no stamp read."""

    cameras: tuple[str, ...]
    served_ns: np.ndarray  # when the source made the frame
    counters: np.ndarray  # which frame of the served stream it is
    grabbed_ns: np.ndarray  # the recording's after_grab_ns

    @property
    def frame_sets(self) -> int:
        return self.served_ns.shape[1]

    @property
    def readable(self) -> np.ndarray:
        """The frame sets where every camera's stamp decoded."""
        return np.all(self.counters != UNREAD, axis=0)

    @property
    def unreadable(self) -> int:
        return int(self.frame_sets - self.readable.sum())

    @property
    def spread_ns(self) -> np.ndarray:
        """Per readable frame set: newest minus oldest moment shown."""
        served = self.served_ns[:, self.readable]
        return served.max(axis=0) - served.min(axis=0)

    def spread_ms(self, percentile: float) -> float:
        spread = self.spread_ns
        return float(np.percentile(spread, percentile)) / 1e6 if len(spread) else 0.0

    def within(self, tolerance_ms: float) -> float:
        """Fraction of readable frame sets whose spread is at most tolerance_ms."""
        spread = self.spread_ns
        return float(np.mean(spread <= tolerance_ms * 1e6)) if len(spread) else 0.0

    @property
    def same_frame(self) -> float:
        """Fraction of readable frame sets where every camera shows the same served frame
        (meaningful for cameras reading one stream)."""
        counters = self.counters[:, self.readable]
        return float(np.mean(np.all(counters == counters[0], axis=0))) if counters.size else 0.0

    def latency_ms(self) -> dict[str, float]:
        """Per camera, mean of grabbed minus served over its readable frames."""
        latency = {}
        for row, camera in enumerate(self.cameras):
            read = self.counters[row] != UNREAD
            delay = self.grabbed_ns[row, read] - self.served_ns[row, read]
            latency[camera] = float(delay.mean()) / 1e6 if read.any() else float("nan")
        return latency

    def summary(self) -> str:
        latency = ", ".join(f"{camera} {ms:.1f}" for camera, ms in self.latency_ms().items())
        return (
            f"{self.frame_sets} frame sets ({self.unreadable} unreadable): spread ms "
            f"p50 {self.spread_ms(50):.1f} p99 {self.spread_ms(99):.1f} "
            f"max {self.spread_ms(100):.1f}; same source frame {self.same_frame:.1%}; "
            f"latency ms {latency}"
        )


def measure_stamp_sync(recording_dir: Path) -> StampSync:
    """Decode every frame of every camera of a finished recording and read its stamp."""
    recording_dir = Path(recording_dir)
    manifest = read_manifest(recording_dir)
    cameras = tuple(camera["id"] for camera in manifest["cameras"])
    stamps = [_decode_stamps(recording_dir / camera["file"]) for camera in manifest["cameras"]]
    grabs = [read_timestamps(recording_dir / camera["timestamps"])["after_grab_ns"]
             for camera in manifest["cameras"]]
    counts = {len(s) for s in stamps} | {len(g) for g in grabs}
    if len(counts) != 1:
        raise RecordingError(
            f"{recording_dir}: cameras differ in decoded frames or timestamp rows: "
            f"{[len(s) for s in stamps]} frames, {[len(g) for g in grabs]} rows"
        )
    shape = (len(cameras), counts.pop())
    served = np.array([[UNREAD if s is None else s.monotonic_ns for s in cam] for cam in stamps],
                      np.int64).reshape(shape)
    counters = np.array([[UNREAD if s is None else s.counter for s in cam] for cam in stamps],
                        np.int64).reshape(shape)
    return StampSync(cameras, served, counters, np.array(grabs, np.int64).reshape(shape))


def _decode_stamps(path: Path) -> list[clockstamp.ClockStamp | None]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rows = clockstamp.band_height(stream.codec_context.width)
            return [clockstamp.read(top_rows(frame, rows)) for frame in container.decode(stream)]
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise RecordingError(f"cannot decode {path}: {exc}") from exc
