"""The shared control block of one capture group: the state the sync gate reads.

Plain int64 cells in one shared-memory segment, so every camera process can read
the whole group's state per frame without locks, pickling or syscalls.

Group cells:
- hold_at: no camera grabs frame n >= hold_at. The controller raises it to gather
  the group at one frame boundary (pause, config update, record start / stop).
- first_recording / last_recording: recording boundaries as frame numbers
  (-1 = unset). Files hold exactly the frames [first, last), less the paused ones.
- pause_from / pause_until: the take's current writing pause as frame numbers
  [from, until) (NO_HOLD = open-ended, or no pause when from is NO_HOLD). Frames in it
  are captured (the preview goes on) but not flagged FLAG_RECORD, for every camera alike,
  so every file skips the same frame sets. Only the latest pause is kept: a camera reads
  the flags of frame n as it grabs it, and every earlier pause's frames were grabbed (and
  their flags fixed in the ring) before the group was gathered for the next one.
- stop: the processes exit their loops.
- copy_camera: the index of the one camera that may be recorded by stream copy (-1: none);
  the controller names it before any camera opens.
- set clock (set_period_ns, set_anchor_frame, set_anchor_ns): frame set k is due at
  anchor_ns + (k - anchor_frame) * set_period_ns on the monotonic clock, the moment
  every free-running camera samples its frame for it (0 period: no clock yet), plus
  set_shift_ns: how far a camera recorded by stream copy (which can neither skip nor
  repeat a packet) has moved the clock onto its own frames' capture times.

Per-camera cells: count (frames published = next frame number), ready, grabbing,
error, command sequence (commands waiting on the pipe), dropped, room (the highest frame
number the camera's ring can take without overwriting one its writer still needs; each
camera refreshes its own while it runs, so no camera grabs a frame set another cannot),
writer batch (its recording writer is woken once per this many frame sets, since a wake
costs more than writing a packet; workers/writer.py).
A history of capture stamps per frame (grab_ns: the source's capture time, else the
after-grab stamp) gives the live sync spread. A history of the stream-copy camera's
packet chains (chain_frame / chain_from: for frame n, the keyframe its packet chain
started at, -1 while it has none) tells every writer which frame sets that camera's file
can decode, so all writers skip the same sets until its keyframe; with it, the capture
time of that camera's packet for frame n (chain_captured_ns), the moment every
free-running camera samples its frame of set n at (workers/camera.py).
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from engine.ipc.ring import (
    FLAG_FINISH,
    FLAG_RECORD,
    attach_segment,
    create_segment,
    segment_buffer,
)

NO_HOLD = np.iinfo(np.int64).max
# The count of a parked camera (failed, reconnecting, stopped): above any real frame
# number, so the others' sync gate ignores it, and far from overflow when added to.
PARKED = 2**62
GRAB_HISTORY = 1024

_GLOBAL_FIELDS = 12
(G_HOLD_AT, G_FIRST_RECORDING, G_LAST_RECORDING, G_STOP, G_SET_PERIOD_NS, G_SET_ANCHOR_FRAME,
 G_SET_ANCHOR_NS, G_PAUSE_FROM, G_PAUSE_UNTIL, G_SET_SHIFT_NS, G_COPY_CAMERA) = range(11)

_CAMERA_FIELDS = 8
(C_COUNT, C_READY, C_GRABBING, C_ERROR, C_COMMAND_SEQ, C_DROPPED, C_ROOM,
 C_WRITER_BATCH) = range(8)


class GroupState:
    """Named numpy views onto the control segment."""

    def __init__(self, segment: shared_memory.SharedMemory, n_cameras: int, owner: bool) -> None:
        self._segment = segment
        self._owner = owner
        self.n_cameras = n_cameras
        buf = segment_buffer(segment)
        offset = 0
        self.globals = np.ndarray((_GLOBAL_FIELDS,), np.int64, buffer=buf, offset=offset)
        offset += _GLOBAL_FIELDS * 8
        self.cameras = np.ndarray(
            (n_cameras, _CAMERA_FIELDS), np.int64, buffer=buf, offset=offset
        )
        offset += n_cameras * _CAMERA_FIELDS * 8
        self.grab_ns = np.ndarray((n_cameras, GRAB_HISTORY), np.int64, buffer=buf, offset=offset)
        offset += n_cameras * GRAB_HISTORY * 8
        self.chain_frame = np.ndarray((GRAB_HISTORY,), np.int64, buffer=buf, offset=offset)
        offset += GRAB_HISTORY * 8
        self.chain_from = np.ndarray((GRAB_HISTORY,), np.int64, buffer=buf, offset=offset)
        offset += GRAB_HISTORY * 8
        self.chain_captured_ns = np.ndarray((GRAB_HISTORY,), np.int64, buffer=buf,
                                            offset=offset)
        # Column views used by the gate on every frame.
        self.counts = self.cameras[:, C_COUNT]
        self.ready = self.cameras[:, C_READY]
        self.grabbing = self.cameras[:, C_GRABBING]
        self.room = self.cameras[:, C_ROOM]
        self.writer_batch = self.cameras[:, C_WRITER_BATCH]

    @staticmethod
    def _size(n_cameras: int) -> int:
        return 8 * (_GLOBAL_FIELDS + n_cameras * (_CAMERA_FIELDS + GRAB_HISTORY)
                    + 3 * GRAB_HISTORY)

    @classmethod
    def create(cls, n_cameras: int) -> GroupState:
        segment = create_segment(cls._size(n_cameras))
        state = cls(segment, n_cameras, owner=True)
        state.globals[:] = 0
        state.cameras[:] = 0
        state.grab_ns[:] = 0
        state.chain_frame[:] = -1
        state.chain_from[:] = -1
        state.chain_captured_ns[:] = 0
        state.globals[G_HOLD_AT] = NO_HOLD
        state.room[:] = NO_HOLD
        state.writer_batch[:] = 1
        state.globals[G_FIRST_RECORDING] = -1
        state.globals[G_LAST_RECORDING] = -1
        state.globals[G_PAUSE_FROM] = NO_HOLD
        state.globals[G_PAUSE_UNTIL] = NO_HOLD
        state.globals[G_COPY_CAMERA] = -1
        return state

    @classmethod
    def attach(cls, name: str, n_cameras: int) -> GroupState:
        return cls(attach_segment(name, untrack=False), n_cameras, owner=False)

    @property
    def name(self) -> str:
        return self._segment.name

    def recording_flags(self, frame_number: int) -> int:
        """FLAG_RECORD / FLAG_FINISH for frame_number from the shared boundaries: 0 before
        the take, FLAG_FINISH from its last frame on, 0 inside a writing pause (the writer
        steps over such a frame without writing it), else FLAG_RECORD."""
        first = self.globals[G_FIRST_RECORDING]
        if first < 0 or frame_number < first:
            return 0
        last = self.globals[G_LAST_RECORDING]
        if 0 <= last <= frame_number:
            return FLAG_FINISH
        if self.writing_paused_at(frame_number):
            return 0
        return FLAG_RECORD

    def writing_paused_at(self, frame_number: int) -> bool:
        """Whether frame_number lies in the take's current writing pause."""
        group = self.globals
        return bool(group[G_PAUSE_FROM] <= frame_number < group[G_PAUSE_UNTIL])

    def set_moment_ns(self, frame_number: int) -> int:
        """When frame set frame_number is due (monotonic ns); 0 while there is no clock."""
        group = self.globals
        period = int(group[G_SET_PERIOD_NS])
        if not period:
            return 0
        sets_after_anchor = frame_number - int(group[G_SET_ANCHOR_FRAME])
        return int(group[G_SET_ANCHOR_NS] + group[G_SET_SHIFT_NS]) + sets_after_anchor * period

    def copy_chain_from(self, frame_number: int) -> int | None:
        """The keyframe at which the stream-copy camera's packet chain through frame n
        began: -1 while it has none (its packet of n cannot be decoded from any keyframe
        since); None when it did not publish frame n (no such camera, or out of the gate)."""
        slot = frame_number % GRAB_HISTORY
        if self.chain_frame[slot] != frame_number:
            return None
        return int(self.chain_from[slot])

    def copy_published(self, frame_number: int) -> bool:
        """Whether the stream-copy camera has taken its packet for frame set n."""
        return bool(self.chain_frame[frame_number % GRAB_HISTORY] == frame_number)

    def copy_captured_ns(self, frame_number: int) -> int | None:
        """The capture time of the stream-copy camera's packet for frame set n; None
        while it has not taken one (or there is no such camera)."""
        slot = frame_number % GRAB_HISTORY
        if self.chain_frame[slot] != frame_number:  # written after chain_captured_ns
            return None
        return int(self.chain_captured_ns[slot])

    def close(self) -> None:
        del self.counts, self.ready, self.grabbing, self.room, self.writer_batch
        del self.globals, self.cameras, self.grab_ns, self.chain_frame, self.chain_from
        del self.chain_captured_ns
        self._segment.close()
        if self._owner:
            self._segment.unlink()
