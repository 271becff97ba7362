"""A sensor's sidecar CSV as a text track of an MKV file, on the video's time line.

Matroska has no generic data track that FFmpeg will mux (PyAV's add_data_stream is
refused for 'matroska'), so each sample becomes one SubRip (S_TEXT/UTF8) packet whose
payload is the sample's CSV row; the header is the stream's COLUMNS tag. Players show
the rows as subtitles; tools read the packets back with their timestamps. The packets
are muxed as they are, without a subtitle encoder (which would want ASS input).

Time line: pts 0 is the recording's first frame. The anchor is the first sample taken
once the group had reached first_frame (frame column >= first_frame); it is placed at
(frame - first_frame) / fps, and every later sample at the anchor plus its monotonic
distance to it. That is exact to within one frame period; for sub-frame alignment
compare monotonic_ns with the cameras' timestamps files, which share the clock.
Samples before the anchor (taken before the recording's first frame) are left out.

A take with writing pauses (its segments, engine/recording/segments.py) plays its
segments back to back, so each segment has an anchor of its own, placed after the frames
of the segments before it; samples taken during a pause (frame in no segment) are left
out, as the video leaves out those frames. Samples after the last segment's end belong
to it, as they always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av

from engine.recording.segments import Segment
from engine.sensors.base import SensorError
from engine.sensors.sidecar import read_sidecar

TIME_BASE = Fraction(1, 1000)
CODEC = "subrip"


@dataclass(frozen=True)
class TrackPacket:
    """One sample on the video's time line (ms) with its CSV row as payload."""

    pts: int
    duration: int
    payload: bytes


def track_packets(
    header: list[str], rows: list[list[str]], fps: float, first_frame: int,
    segments: Sequence[Segment | Sequence[int | None]] | None = None,
) -> list[TrackPacket]:
    """The packets of a sidecar's rows (from read_sidecar); see the module docstring.
    `segments`: the take's recorded frame ranges (None: one from first_frame on)."""
    if not fps > 0:
        raise SensorError(f"the video frame rate must be positive, got {fps!r}")
    at_mono, at_frame = header.index("monotonic_ns"), header.index("frame")
    try:
        stamped = [(int(row[at_mono]), int(row[at_frame]), row) for row in rows]
    except ValueError as exc:
        raise SensorError(f"sensor file: bad stamp in a row: {exc}") from exc
    ranges = [(int(first or 0), last) for first, last in (segments or [(first_frame, None)])]
    recorded: list[tuple[int, int, list[str]]] = []
    pts: list[int] = []
    offset = 0  # video frames of the segments before this one
    for position, (first, last) in enumerate(ranges):
        final = position == len(ranges) - 1
        inside = [sample for sample in stamped
                  if first <= sample[1] and (final or last is None or sample[1] < last)]
        if inside:
            anchor_ns, anchor_frame, _ = inside[0]
            origin_ms = (offset + anchor_frame - first) * 1000.0 / fps
            for mono, _, _ in inside:  # never before the previous segment's samples
                pts.append(max(round(origin_ms + (mono - anchor_ns) / 1e6),
                               pts[-1] if pts else 0))
            recorded.extend(inside)
        if last is not None:
            offset += last - first
    if not recorded:
        return []
    # Each sample lasts until the next; the last one as long as the one before it.
    durations = [b - a for a, b in pairwise(pts)]
    durations.append(durations[-1] if durations else 1)
    return [
        TrackPacket(p, max(d, 1), ",".join(row).encode("ascii"))
        for p, d, (_, _, row) in zip(pts, durations, recorded, strict=True)
    ]


def write_sensor_track(
    csv_path: Path, mkv_path: Path, fps: float, first_frame: int,
    segments: Sequence[Segment | Sequence[int | None]] | None = None,
) -> int:
    """Write the samples of csv_path as the single text track of mkv_path; return the count.
    `segments`: the take's recorded frame ranges (the manifest's; None: contiguous)."""
    csv_path = Path(csv_path)
    header, rows = read_sidecar(csv_path)
    packets = track_packets(header, rows, fps, first_frame, segments)
    try:
        with av.open(str(mkv_path), "w", format="matroska") as container:
            stream = container.add_mux_stream(CODEC)
            stream.time_base = TIME_BASE
            stream.metadata["title"] = csv_path.stem
            stream.metadata["COLUMNS"] = ",".join(header)
            for item in packets:
                packet = av.Packet(item.payload)
                packet.stream = stream
                packet.time_base = TIME_BASE
                packet.pts = packet.dts = item.pts
                packet.duration = item.duration
                container.mux(packet)
    except av.FFmpegError as exc:
        raise SensorError(f"cannot write sensor track {mkv_path}: {exc}") from exc
    return len(packets)
