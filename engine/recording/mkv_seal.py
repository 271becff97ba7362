"""A camera's Matroska file read and finished in place, without copying it.

The writer muxes one cluster per frame (`CRASH_SAFE_MUXING`), so a file a crash or a
full disk left behind is a run of whole clusters, perhaps followed by a cut one, and
its frame k can be cut off by truncating the file at cluster k. `scan` walks the
clusters (their headers only) and `seal` cuts the file after N frames and writes what
FFmpeg would have written on a clean close: the index (Cues), the duration, the seek
head and the segment size. That makes a recording final in constant space: the only
bytes added are the index, and a disk too full even for that leaves a file without it,
still readable from the start.

Element IDs and layout: the Matroska specification (RFC 9559). The places patched
(seek-head room, Duration, the DURATION tag, CRC-32s) are those FFmpeg's muxer
reserves in every file it starts on a seekable output.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.durable import fsync_path

SEGMENT, SEEK_HEAD, INFO, TRACKS, TAGS, CLUSTER, CUES = (
    0x18538067, 0x114D9B74, 0x1549A966, 0x1654AE6B, 0x1254C367, 0x1F43B675, 0x1C53BB6B)
_VOID, _CRC32, _DURATION, _TIMESTAMP_SCALE = 0xEC, 0xBF, 0x4489, 0x2AD7B1
_TAG, _SIMPLE_TAG, _TAG_NAME = 0x7373, 0x67C8, 0x45A3
_CLUSTER_TIMESTAMP, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = 0xE7, 0xA3, 0xA0, 0xA1
_CLUSTER_ID = CLUSTER.to_bytes(4, "big")
_HEAD_BYTES = 64 * 1024  # everything before the first cluster fits (FFmpeg writes ~1 KB)


class MkvError(ValueError):
    """The file is not a Matroska file this module can finish (named in the message)."""


@dataclass(frozen=True)
class Element:
    id: int
    offset: int  # of the ID
    data: int  # offset of the payload
    size: int  # of the payload; -1 when unknown

    @property
    def end(self) -> int:
        return self.data + self.size


@dataclass(frozen=True)
class Frame:
    cluster: int  # offset of the cluster holding it
    end: int  # where that cluster ends
    time: int  # in the segment's timestamp units
    keyframe: bool


@dataclass
class MkvLayout:
    """Where the parts of a file are: the segment's children before the first cluster,
    and the frames in the unbroken run of whole clusters that follows."""

    segment: Element
    head: list[Element]
    timestamp_scale_ns: int
    frames: list[Frame]


def _vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at data[pos]: (value, length); an element ID keeps
    its length marker, a size drops it (and all ones means unknown: -1)."""
    first = data[pos]
    if first == 0:
        raise MkvError("invalid variable-length integer")
    length = 9 - first.bit_length()
    if len(data) < pos + length:
        raise MkvError("cut variable-length integer")
    value = first if marker else first & ((0x80 >> (length - 1)) - 1)
    for byte in data[pos + 1: pos + length]:
        value = (value << 8) | byte
    if not marker and value == (1 << (7 * length)) - 1:
        value = -1
    return value, length


def _element(data: bytes, pos: int, base: int = 0) -> Element:
    """The element whose ID is at data[pos]; offsets are data offsets + base."""
    element_id, id_length = _vint(data, pos, marker=True)
    size, size_length = _vint(data, pos + id_length, marker=False)
    return Element(element_id, base + pos, base + pos + id_length + size_length, size)


def _children(data: bytes, start: int, end: int, base: int = 0) -> Iterator[Element]:
    """The elements in data[start:end], parsed one at a time (what follows may be damaged)."""
    pos = start
    while pos < end:
        child = _element(data, pos, base)
        yield child
        if child.size < 0:
            return
        pos = child.end - base


def scan(path: Path, fps: float) -> MkvLayout:
    """The file's head and its frames 0, 1, 2, ... up to the first cluster that is cut,
    damaged, or out of order (a frame's time must be its index at fps)."""
    with open(path, "rb") as file:
        descriptor, size = file.fileno(), os.fstat(file.fileno()).st_size
        segment, children, first_cluster, scale = _head(descriptor, path)
        frames = _frames(descriptor, first_cluster, size, scale, fps)
    return MkvLayout(segment, children, scale, frames)


def closed_frames(path: Path, fps: float) -> int | None:
    """The frames of a file FFmpeg closed cleanly, counted from its last cluster alone
    (so in constant time): its segment size matches the file, its seek head names the
    Cues, and a cluster ends where the Cues begin. None for any other file: scan it."""
    with open(path, "rb") as file:
        descriptor, size = file.fileno(), os.fstat(file.fileno()).st_size
        segment, children, first_cluster, scale = _head(descriptor, path)
        if segment.size < 0 or segment.end != size or children[0].id != SEEK_HEAD:
            return None
        head = os.pread(descriptor, children[0].end, 0)
        cues = _seek_target(head, children[0], CUES, segment.data)
        if cues is None or not first_cluster < cues < size:
            return None
        window = 1 << 20  # grows until it holds the last frame, however large
        while True:
            start = max(first_cluster, cues - window)
            data = os.pread(descriptor, cues - start, start)
            last = _last_frame(data, start, cues)
            if last is not None:
                return round(last.time * scale * fps / 1e9) + 1
            if start == first_cluster:
                return None
            window *= 4


def _last_frame(data: bytes, base: int, end: int) -> Frame | None:
    """The frame of the cluster in data that ends at `end` (searched from the back: the
    cluster ID's bytes may also occur inside a frame's data)."""
    at = data.rfind(_CLUSTER_ID)
    while at >= 0:
        try:
            cluster = _element(data, at, base)
            if cluster.id == CLUSTER and cluster.end == end:
                return _first_block(data[at: at + 64], cluster)
        except (IndexError, MkvError):
            pass
        at = data.rfind(_CLUSTER_ID, 0, at)
    return None


def _seek_target(head: bytes, seek_head: Element, target: int, segment_start: int
                 ) -> int | None:
    """Where the seek head says the `target` element is, as a file offset."""
    for seek in _children(head, seek_head.data, seek_head.end):
        if seek.id != 0x4DBB:
            continue
        fields = {child.id: head[child.data:child.end]
                  for child in _children(head, seek.data, seek.end)}
        if fields.get(0x53AB) == _id_bytes(target) and 0x53AC in fields:
            return segment_start + int.from_bytes(fields[0x53AC], "big")
    return None


def _head(descriptor: int, path: Path) -> tuple[Element, list[Element], int, int]:
    """The segment, its children before the first cluster, where that cluster starts,
    and the timestamp scale (ns per tick)."""
    head = os.pread(descriptor, _HEAD_BYTES, 0)
    try:
        top = _element(head, 0)
        segment = _element(head, top.end)
        if segment.id != SEGMENT:
            raise MkvError("no Matroska segment after the EBML header")
        children: list[Element] = []
        for child in _children(head, segment.data, len(head)):
            if child.id == CLUSTER:
                return segment, children, child.offset, _timestamp_scale(head, children)
            children.append(child)
        raise MkvError("no cluster in the file's first 64 KiB")
    except (IndexError, MkvError) as exc:
        raise MkvError(f"{path} is not a readable Matroska file: {exc}") from exc


def _timestamp_scale(head: bytes, children: list[Element]) -> int:
    info = _find(children, INFO)
    for child in _children(head, info.data, info.end):
        if child.id == _TIMESTAMP_SCALE:
            return int.from_bytes(head[child.data:child.end], "big")
    return 1_000_000  # the specification's default


def _frames(descriptor: int, pos: int, size: int, scale_ns: int, fps: float) -> list[Frame]:
    frames: list[Frame] = []
    while pos < size:
        header = os.pread(descriptor, 64, pos)
        try:
            cluster = _element(header, 0, pos)
            if cluster.id != CLUSTER or cluster.size < 0 or cluster.end > size:
                break
            frame = _first_block(header, cluster)
        except (IndexError, MkvError):
            break
        if frame is None or round(frame.time * scale_ns * fps / 1e9) != len(frames):
            break
        frames.append(frame)
        pos = cluster.end
    return frames


def _first_block(header: bytes, cluster: Element) -> Frame | None:
    """The cluster's (only) frame: its time and keyframe flag, from the block header."""
    time = None
    pos = cluster.data - cluster.offset
    while pos < len(header) - 8:
        child = _element(header, pos, cluster.offset)
        body = child.data - cluster.offset
        if child.id == _CLUSTER_TIMESTAMP:
            time = int.from_bytes(header[body: body + child.size], "big")
        elif child.id == _BLOCK_GROUP:
            pos = body  # its Block follows; a block group has no keyframe flag
            continue
        elif child.id in (_SIMPLE_BLOCK, _BLOCK) and time is not None:
            _, track_length = _vint(header, body, marker=False)
            relative, flags = struct.unpack_from(">hB", header, body + track_length)
            keyframe = child.id == _SIMPLE_BLOCK and bool(flags & 0x80)
            return Frame(cluster.offset, cluster.end, time + relative, keyframe)
        pos = child.end - cluster.offset
    return None


def _find(children: list[Element], element_id: int) -> Element:
    for child in children:
        if child.id == element_id:
            return child
    raise MkvError(f"no element {element_id:#x} before the first cluster")


def seal(path: Path, layout: MkvLayout, frames: int, fps: float) -> bool:
    """Cut the file after `frames` frames and write its index, duration, seek head and
    size, in place; fsync. Returns False when the disk had no room for the index (the
    file is then complete but not seekable by index)."""
    if not 0 < frames <= len(layout.frames):
        raise ValueError(f"{path} holds {len(layout.frames)} whole frames, cannot keep {frames}")
    kept = layout.frames[:frames]
    segment_start = layout.segment.data
    with open(path, "r+b") as file:
        file.truncate(kept[-1].end)
        file.seek(kept[-1].end)
        cues_at: int | None = kept[-1].end
        try:
            file.write(_cues(kept, segment_start, round(1e9 / layout.timestamp_scale_ns)))
            file.flush()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            file.truncate(kept[-1].end)
            cues_at = None
        end = file.seek(0, os.SEEK_END)
        head = bytearray(os.pread(file.fileno(), layout.head[-1].end, 0))
        _write_seek_head(head, layout.head, segment_start, cues_at)
        duration_ms = frames * 1e9 / fps / layout.timestamp_scale_ns
        _patch_info(head, _find(layout.head, INFO), duration_ms)
        _patch_duration_tag(head, layout.head, frames / fps)
        size_at = segment_start - 8
        head[size_at:segment_start] = (0x01 << 56 | (end - segment_start)).to_bytes(8, "big")
        os.pwrite(file.fileno(), bytes(head), 0)
    fsync_path(path)
    return cues_at is not None


def _id_bytes(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _encode(element_id: int, payload: bytes, size_length: int = 0) -> bytes:
    """An element with its size in the fewest bytes (or size_length bytes)."""
    length = size_length or next(n for n in range(1, 9) if len(payload) < (1 << (7 * n)) - 1)
    size = (0x80 >> (length - 1)) << (8 * (length - 1)) | len(payload)
    return _id_bytes(element_id) + size.to_bytes(length, "big") + payload


def _uint(element_id: int, value: int, width: int = 0) -> bytes:
    width = width or max(1, (value.bit_length() + 7) // 8)
    return _encode(element_id, value.to_bytes(width, "big"))


def _cues(frames: list[Frame], segment_start: int, spacing: int) -> bytes:
    """A cue point (its time and its cluster's place in the segment) per keyframe, at
    most one per `spacing` time units: an intra-only codec has a keyframe every frame,
    and a player seeking to a second's start decodes the rest of the way."""
    points, next_time = [], 0
    for frame in frames:
        if frame.keyframe and frame.time >= next_time:
            points.append(_encode(0xBB, _uint(0xB3, frame.time) + _encode(
                0xB7, _uint(0xF7, 1) + _uint(0xF1, frame.cluster - segment_start))))
            next_time = frame.time + spacing
    return _encode(CUES, b"".join(points))


def _void(length: int) -> bytes:
    """A Void element exactly `length` (>= 2) bytes long."""
    if length < 2:
        raise MkvError("no room for a Void element")
    size_length = 1 if length - 2 < 0x7F else 8
    return _encode(_VOID, bytes(length - 1 - size_length), size_length)


def _write_seek_head(head: bytearray, children: list[Element], segment_start: int,
                     cues_at: int | None) -> None:
    """Fill the room before Info (FFmpeg's seek head, or the Void reserving it) with a
    seek head naming Info, Tracks, Tags and the Cues, and a Void for the rest."""
    room = children[0]
    stop = next(child.offset for child in children if child.id == INFO)
    if room.id not in (SEEK_HEAD, _VOID):
        raise MkvError("no room reserved for the seek head")
    targets = [(child.id, child.offset) for child in children if child.id in (INFO, TRACKS, TAGS)]
    if cues_at is not None:
        targets.append((CUES, cues_at))
    seeks = b"".join(
        _encode(0x4DBB, _encode(0x53AB, _id_bytes(element_id))
                + _uint(0x53AC, offset - segment_start, 8))
        for element_id, offset in targets)
    seek_head = _encode(SEEK_HEAD, seeks)
    spare = stop - room.offset - len(seek_head)
    if spare == 1:
        seek_head, spare = _encode(SEEK_HEAD, seeks, 2), 0
    if spare < 0:
        raise MkvError("the seek head does not fit in its room")
    head[room.offset:stop] = seek_head + (_void(spare) if spare else b"")


def _patch_info(head: bytearray, info: Element, duration: float) -> None:
    """Write Duration where FFmpeg put it (or its 11-byte placeholder) and the CRC-32."""
    for child in _children(bytes(head), info.data, info.end):
        if child.id == _DURATION or (child.id == _VOID and child.end - child.offset == 11):
            head[child.offset:child.end] = _encode(_DURATION, struct.pack(">d", duration))
    _update_crc(head, info)


def _patch_duration_tag(head: bytearray, children: list[Element], seconds: float) -> None:
    """FFmpeg keeps each stream's DURATION tag (or a Void of its size) in Tags."""
    tags = next((child for child in children if child.id == TAGS), None)
    if tags is None:
        return
    data = bytes(head)
    minutes, second = divmod(seconds, 60)
    value = f"{int(minutes // 60):02d}:{int(minutes % 60):02d}:{second:012.9f}".encode() + b"\0"
    simple_tag = _encode(_SIMPLE_TAG, _encode(_TAG_NAME, b"DURATION") + _encode(0x4487, value))
    for tag in _children(data, tags.data, tags.end):
        if tag.id != _TAG:
            continue
        for child in _children(data, tag.data, tag.end):
            is_duration = child.id == _SIMPLE_TAG and b"DURATION" in data[child.data:child.end]
            if (is_duration or child.id == _VOID) and child.end - child.offset == len(simple_tag):
                head[child.offset:child.end] = simple_tag
    _update_crc(head, tags)


def _update_crc(head: bytearray, parent: Element) -> None:
    """A CRC-32 element first in parent (or FFmpeg's 6-byte Void for it) gets the
    checksum of everything after it in parent (little-endian, as Matroska stores it)."""
    first = _element(bytes(head), parent.data)
    if first.end - first.offset != 6 or first.id not in (_CRC32, _VOID):
        return
    crc = zlib.crc32(bytes(head[first.end:parent.end]))
    head[first.offset:first.end] = _encode(_CRC32, crc.to_bytes(4, "little"))
