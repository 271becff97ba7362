"""A shared-memory ring of frame slots, one ring per camera.

Layout of the segment: a small int64 header, an int64 metadata row per slot
(frame number, the process's stamps, the source's capture time, UTC, flags),
then the slot images (each 64-byte aligned). Frame n lives in slot n % n_slots.

A ring may carry packets instead of pictures (a camera recorded by stream copy: its own
compressed packets go to the file untouched). A slot then holds a packet's bytes
(M_BYTES long, FLAG_KEY on a keyframe), and one more image slot after the last holds
the newest picture the camera decoded for the live view (`write_preview`), which
`read_latest` shows instead of a slot. Decoding costs the camera more than copying its
packets, so it decodes only while a display says it is watching (`watch`).

Three parties use a ring:
- the camera process writes frames straight into slots (`begin_write` hands out
  the slot's image view, `end_write` publishes it);
- the recording writer consumes every frame in order and owns `cursor`, the next
  frame it still needs; the camera never writes frame n while n - cursor >= n_slots
  (backpressure, not loss);
- a display peeks at the newest frame with `read_latest`, guarded by a per-slot
  sequence counter (odd while a write is under way) so it detects torn reads.
"""

from __future__ import annotations

import os
import secrets
import time
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import cv2
import numpy as np

_MAGIC = 0x52494E47  # "RING"
_HEADER_FIELDS = 9
(_H_MAGIC, _H_SLOTS, _H_HEIGHT, _H_WIDTH, _H_CHANNELS, _H_LATEST, _H_CURSOR, _H_PACKETS,
 _H_WATCHED) = range(9)
# A packet ring's picture is decoded only while a display watched it this recently.
WATCH_LAPSE_NS = 2_000_000_000

META_FIELDS = 12
(
    M_SEQ,
    M_FRAME,
    M_BEFORE_GRAB,
    M_AFTER_GRAB,
    M_AFTER_RETRIEVE,
    M_AFTER_PUBLISH,
    M_UTC,
    M_FLAGS,
    M_CAPTURE,
    M_BYTES,
    M_DEVICE_FRAME,  # the camera's own frame counter, -1 when it has none
    M_DEVICE_NS,  # the camera's own clock, -1 when it has none
) = range(META_FIELDS)

NO_WRITER_ROOM = 2**62  # room_until() while no writer holds the cursor
FLAG_RECORD = 1
FLAG_FINISH = 2
FLAG_REPEAT = 4  # the camera had no new frame for this set: its previous one again
FLAG_KEY = 8  # a packet ring's slot holds a keyframe

_ALIGN = 64


def _aligned(nbytes: int) -> int:
    return (nbytes + _ALIGN - 1) // _ALIGN * _ALIGN


def _layout(n_slots: int, shape: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """Offsets of (metadata, first image), the slot stride and the total size; room for
    one more slot and metadata row than n_slots (a packet ring's preview)."""
    meta_offset = _aligned(_HEADER_FIELDS * 8)
    image_offset = meta_offset + _aligned((n_slots + 1) * META_FIELDS * 8)
    stride = _aligned(int(np.prod(shape)))
    return meta_offset, image_offset, stride, image_offset + (n_slots + 1) * stride


SEGMENT_PREFIX = "rw"


def segment_prefix(pid: int | None = None) -> str:
    """Names of segments created by process pid start with this (short: macOS allows 31)."""
    return f"{SEGMENT_PREFIX}{os.getpid() if pid is None else pid}_"


SHM_FOLDER = Path("/dev/shm")


def sweep_stale_segments() -> list[str]:
    """Remove segments whose creating process is gone; return their names.

    A controller killed together with its whole process group (its resource tracker
    included) cannot unlink its rings; the next engine to start does it instead.
    """
    removed: list[str] = []
    if not SHM_FOLDER.is_dir():
        return removed  # no listable POSIX shared memory here (macOS): nothing to sweep
    for path in SHM_FOLDER.glob(f"{SEGMENT_PREFIX}*_*"):
        pid_text = path.name[len(SEGMENT_PREFIX):].partition("_")[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return True


def create_segment(size: int) -> shared_memory.SharedMemory:
    """A new segment named after its creator, so leftovers can be traced to a process.

    Its memory is allocated now: a full /dev/shm is a clear error here instead of a
    SIGBUS in a camera process halfway through a recording.
    """
    segment = shared_memory.SharedMemory(
        name=segment_prefix() + secrets.token_hex(4), create=True, size=size
    )
    try:
        os.posix_fallocate(segment._fd, 0, size)  # type: ignore[attr-defined]
    except OSError as exc:
        segment.close()
        segment.unlink()
        raise MemoryError(
            f"cannot allocate {size / 2**20:.0f} MiB of shared memory: {exc.strerror}"
        ) from exc
    return segment


def segment_buffer(segment: shared_memory.SharedMemory) -> memoryview:
    """The segment's memory; a closed segment is an error here, not a fresh numpy buffer."""
    buf = segment.buf
    if buf is None:
        raise ValueError(f"shared memory segment {segment.name} is closed")
    return buf


def prefault(segment: shared_memory.SharedMemory) -> None:
    """Map every page of the segment into this process now, by reading one byte a page.

    Otherwise the first pass through a ring costs a page fault every 4 KiB in the
    camera, the writer and the display, and that lands on the first recorded second.
    """
    np.frombuffer(segment_buffer(segment), np.uint8)[::4096].max()


def attach_segment(name: str, *, untrack: bool) -> shared_memory.SharedMemory:
    """Open an existing segment.

    Python < 3.13 registers every opened segment with the resource tracker, which
    unlinks it when that tracker's processes exit. Processes spawned by the owner
    share the owner's tracker (harmless), but an unrelated process (a GUI client)
    must untrack the segment or it would delete a ring the engine still uses.
    """
    segment = shared_memory.SharedMemory(name=name)
    if untrack:
        resource_tracker.unregister(segment._name, "shared_memory")  # type: ignore[attr-defined]
    return segment


class FrameRing:
    """Views onto one ring segment; see the module docstring for the protocol."""

    def __init__(
        self, segment: shared_memory.SharedMemory, owner: bool, *, map_now: bool = True
    ) -> None:
        self._segment = segment
        self._owner = owner
        if map_now:
            prefault(segment)
        buf = segment_buffer(segment)
        self._header = np.ndarray((_HEADER_FIELDS,), np.int64, buffer=buf)
        if int(self._header[_H_MAGIC]) != _MAGIC:
            raise ValueError(f"shared memory segment {segment.name} is not a frame ring")
        self.n_slots = int(self._header[_H_SLOTS])
        self.shape = (
            int(self._header[_H_HEIGHT]),
            int(self._header[_H_WIDTH]),
            int(self._header[_H_CHANNELS]),
        )
        self.packets = bool(self._header[_H_PACKETS])
        meta_offset, image_offset, stride, _ = _layout(self.n_slots, self.shape)
        rows = np.ndarray((self.n_slots + 1, META_FIELDS), np.int64, buffer=buf,
                          offset=meta_offset)
        self.meta = rows[: self.n_slots]
        self._preview_meta = rows[self.n_slots]
        images = [
            np.ndarray(self.shape, np.uint8, buffer=buf, offset=image_offset + i * stride)
            for i in range(self.n_slots + 1)
        ]
        self._images = images[: self.n_slots]
        self._preview = images[self.n_slots]
        self._bytes = [image.reshape(-1) for image in self._images]

    @classmethod
    def create(cls, n_slots: int, shape: tuple[int, int, int], *,
               packets: bool = False) -> FrameRing:
        """A ring of n_slots pictures of `shape`; with packets, of compressed packets of up
        to a picture's size each, plus the preview picture."""
        if n_slots < 2:
            raise ValueError("a frame ring needs at least 2 slots")
        *_, size = _layout(n_slots, shape)
        segment = create_segment(size)
        header = np.ndarray((_HEADER_FIELDS,), np.int64, buffer=segment_buffer(segment))
        header[:] = 0
        header[: _H_WATCHED + 1] = (_MAGIC, n_slots, *shape, -1, -1, int(packets), 0)
        del header
        return cls(segment, owner=True)

    @classmethod
    def attach(cls, name: str, *, untrack: bool = False, display: bool = False) -> FrameRing:
        """Open a ring by name. A display (which reads only the newest slot, and has
        its own resource tracker) untracks it and skips mapping every page up front."""
        return cls(
            attach_segment(name, untrack=untrack or display), owner=False, map_now=not display
        )

    @property
    def name(self) -> str:
        return self._segment.name

    @property
    def nbytes(self) -> int:
        return self._segment.size

    # --- camera side -------------------------------------------------------

    def begin_write(self, frame_number: int) -> np.ndarray:
        """Mark the slot of frame_number as being written and return its image view."""
        slot = frame_number % self.n_slots
        self.meta[slot, M_SEQ] += 1  # odd: write in progress
        return self._images[slot]

    def end_write(
        self,
        frame_number: int,
        before_grab_ns: int,
        after_grab_ns: int,
        after_retrieve_ns: int,
        utc_ns: int,
        flags: int,
        capture_ns: int | None = None,
        nbytes: int = 0,
        device_frame: int = -1,
        device_ns: int = -1,
    ) -> None:
        """Stamp the slot's metadata and publish it as the newest frame. capture_ns is
        when the source captured the frame; None (the source cannot tell): after-grab.
        nbytes: the length of a packet ring's packet. device_frame / device_ns: the
        camera's own frame counter and clock (-1: it has none)."""
        row = self.meta[frame_number % self.n_slots]
        row[M_FRAME] = frame_number
        row[M_BYTES] = nbytes
        row[M_DEVICE_FRAME] = device_frame
        row[M_DEVICE_NS] = device_ns
        row[M_BEFORE_GRAB] = before_grab_ns
        row[M_AFTER_GRAB] = after_grab_ns
        row[M_CAPTURE] = after_grab_ns if capture_ns is None else capture_ns
        row[M_AFTER_RETRIEVE] = after_retrieve_ns
        row[M_UTC] = utc_ns
        row[M_FLAGS] = flags
        row[M_AFTER_PUBLISH] = time.monotonic_ns()
        row[M_SEQ] += 1  # even: complete
        self._header[_H_LATEST] = frame_number

    def packet_buffer(self, frame_number: int) -> np.ndarray:
        """A packet ring's slot of frame_number as flat bytes (after begin_write)."""
        return self._bytes[frame_number % self.n_slots]

    def write_preview(self, frame_number: int) -> np.ndarray:
        """Begin writing the live view's picture of a packet ring; end_preview publishes."""
        self._preview_meta[M_SEQ] += 1
        self._preview_meta[M_FRAME] = frame_number
        return self._preview

    def watched(self) -> bool:
        """A display watched the live view lately (see `watch`)."""
        return time.monotonic_ns() - int(self._header[_H_WATCHED]) < WATCH_LAPSE_NS

    def watch(self) -> None:
        """A display says it shows this ring: a packet ring's camera keeps decoding its
        picture while a display says so at least every WATCH_LAPSE_NS."""
        self._header[_H_WATCHED] = time.monotonic_ns()

    def end_preview(self) -> None:
        self._preview_meta[M_AFTER_PUBLISH] = time.monotonic_ns()
        self._preview_meta[M_SEQ] += 1

    def has_room(self, frame_number: int) -> bool:
        """False while writing frame_number would overwrite a frame the writer still needs."""
        return frame_number <= self.room_until()

    def room_until(self) -> int:
        """The highest frame number writable now (no writer: any)."""
        cursor = int(self._header[_H_CURSOR])
        return NO_WRITER_ROOM if cursor < 0 else cursor + self.n_slots - 1

    # --- recording reader side ---------------------------------------------

    @property
    def latest(self) -> int:
        """Number of the newest published frame, -1 before the first."""
        return int(self._header[_H_LATEST])

    @property
    def shown(self) -> int:
        """Number of the newest frame a display can show (a packet ring: its preview's),
        -1 before the first."""
        if self.packets:
            return int(self._preview_meta[M_FRAME]) if self._preview_meta[M_SEQ] else -1
        return self.latest

    @property
    def cursor(self) -> int:
        """Next frame the recording writer needs; -1 when no writer holds the ring."""
        return int(self._header[_H_CURSOR])

    @cursor.setter
    def cursor(self, frame_number: int) -> None:
        self._header[_H_CURSOR] = frame_number

    def image(self, frame_number: int) -> np.ndarray:
        """The slot image of frame_number (valid while the caller holds it via cursor)."""
        return self._images[frame_number % self.n_slots]

    def metadata(self, frame_number: int) -> np.ndarray:
        return self.meta[frame_number % self.n_slots]

    def packet(self, frame_number: int) -> np.ndarray:
        """A packet ring's packet of frame_number (valid while the caller holds the cursor)."""
        slot = frame_number % self.n_slots
        return self._bytes[slot][: int(self.meta[slot, M_BYTES])]

    # --- display side --------------------------------------------------------

    def read_latest(self, out: np.ndarray, retries: int = 8) -> np.ndarray | None:
        """Copy the newest frame (a packet ring: its preview) into out; return a copy of its
        metadata row.

        An out of another size gets the frame scaled to it (bilinear: area averaging
        cost 15x more at the odd ratios of tiles): a display tile takes no more pixels
        than it shows. None when no frame was
        published yet or every attempt raced a writer. Never blocks the camera.
        """
        for _ in range(retries):
            if self.packets:
                row, image = self._preview_meta, self._preview
                frame_number = int(row[M_FRAME])
                if not row[M_SEQ]:
                    return None
            else:
                frame_number = int(self._header[_H_LATEST])
                if frame_number < 0:
                    return None
                row, image = self.meta[frame_number % self.n_slots], \
                    self._images[frame_number % self.n_slots]
            seq_before = int(row[M_SEQ])
            if seq_before & 1:
                continue
            if out.shape == image.shape:
                np.copyto(out, image)
            elif image.shape[2] != out.shape[2]:  # a mono camera on a colour display
                gray = cv2.resize(image, (out.shape[1], out.shape[0]),
                                  interpolation=cv2.INTER_LINEAR)
                cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR, dst=out)
            else:
                cv2.resize(image, (out.shape[1], out.shape[0]), dst=out,
                           interpolation=cv2.INTER_LINEAR)
            meta = row.copy()
            if int(row[M_SEQ]) == seq_before and meta[M_FRAME] == frame_number:
                return meta
        return None

    def close(self) -> None:
        """Drop the views and the mapping; the owner also unlinks the segment."""
        self._images, self._bytes = [], []
        del self.meta, self._header, self._preview_meta, self._preview
        self._segment.close()
        if self._owner:
            self._segment.unlink()
