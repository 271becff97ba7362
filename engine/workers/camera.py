"""One camera's process: open the source, pass the start-up barrier, run the capture loop.

The loop, per frame: pending commands -> hold gate (pause, updates, record
boundaries) -> sync gate (every camera ready, own count <= every other count,
every ring has room for the recording writers) -> a free-running camera waits for
the frame set's moment on the group's set clock -> latch (the frame captured nearest
at or before the moment, or the previous one again, marked as a repeat; a gated
source makes its next frame at the moment) -> retrieve straight into the ring slot
-> the source's capture time -> read recording flags -> clear "grabbing" -> publish
-> count + 1.

A camera may join a running group (after a restart or a reconnect): the
controller sets its count to the group's common frame and then hands it a ring,
so the loop re-reads its count after every command.

A camera recorded by copy (a network camera's own H.264/H.265 packets) puts packets in
a packet ring instead of pictures, takes them in order (it can neither skip nor repeat
one: later packets refer to earlier ones), and steers the group's set clock onto its
packets' capture times, so the other cameras sample their frames at the moments its
frames were captured. Its packet chain (the keyframe it started at) goes into the
control block for the writers; only its keyframes are decoded, for the live view.

Nothing in the loop allocates frame buffers, pickles, logs or touches pixels in
Python; the pipe to the controller carries only rare commands and events.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from engine.ipc.child import ParentWatch, send_to_controller
from engine.ipc.control import (
    C_COMMAND_SEQ,
    C_DROPPED,
    C_ERROR,
    C_GRABBING,
    C_READY,
    C_ROOM,
    G_COPY_CAMERA,
    G_FIRST_RECORDING,
    G_HOLD_AT,
    G_SET_ANCHOR_NS,
    G_SET_SHIFT_NS,
    G_STOP,
    GRAB_HISTORY,
    PARKED,
    GroupState,
)
from engine.ipc.doorbell import Doorbell
from engine.ipc.messages import (
    Applied,
    ApplySettings,
    Attached,
    AttachRing,
    Failed,
    Opened,
    Reconnected,
    Rejected,
    StreamLost,
)
from engine.ipc.ring import FLAG_KEY, FLAG_REPEAT, FrameRing
from engine.sources import create_source
from engine.sources.base import Latch, SettingRejected, Source
from engine.sources.drained import LATCH_WAIT_PERIODS
from engine.specs import CameraSpec

# Gate waits: spin briefly (the group is usually a few microseconds from opening),
# then sleep in short steps so four waiting cameras do not starve two cores.
_SPIN_WAITS = 40
_GATE_SLEEP_S = 0.0001
# A free-running camera picks its frame by capture time, so waking later at the gate
# changes nothing it records: it sleeps longer and leaves the cores to the others.
_FREE_GATE_SLEEP_S = 0.001
_HELD_SLEEP_S = 0.001
_GEOMETRY_KEYS = ("width", "height", "fps", "channels")
_RECONNECT_FIRST_S = 0.25
_RECONNECT_MAX_S = 5.0
_MAX_SET_WAIT_NS = 100_000_000  # a longer wait for a set's moment re-checks the hold first


def camera_main(
    spec: CameraSpec, index: int, state_name: str, n_cameras: int, conn: Connection,
    doorbells: list[Doorbell],
) -> None:
    """Process entry point (spawned by the controller). `doorbells`: the group's
    recording writers', rung when this camera completes a frame set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle
    state = GroupState.attach(state_name, n_cameras)
    camera = _CaptureProcess(spec, index, state, conn, doorbells)
    try:
        camera.run()
    except Exception as exc:  # report every failure: the controller finalizes the recording
        camera.leave_gate()  # before the report: the controller then parks this slot
        state.cameras[index, C_ERROR] = 1
        send_to_controller(conn, Failed(str(exc)))  # the controller names the camera
    finally:
        camera.leave_gate()
        camera.close()
        state.close()
        for doorbell in doorbells:
            doorbell.close()


class _CaptureProcess:
    """The camera process's side: its source, its ring, its place in the gate."""

    def __init__(
        self, spec: CameraSpec, index: int, state: GroupState, conn: Connection,
        doorbells: list[Doorbell],
    ) -> None:
        self.spec = spec
        self.doorbells = doorbells
        self.index = index
        self.state = state
        self.conn = conn
        self.parent = ParentWatch()
        self.ring: FrameRing | None = None
        self.source: Source | None = None
        self.commands_seen = 0
        self.period_ns = int(1e9 / spec.fps)
        self.joined = False  # set "ready" itself, so it must clear it when it leaves

    def leave_gate(self) -> None:
        """Stop counting in the sync gate. A camera that never joined leaves its slot as
        the controller parked it (clearing "ready" there would hold the whole group)."""
        cells = self.state.cameras[self.index]
        cells[C_GRABBING] = 0
        if self.joined:
            cells[C_READY] = 0
            self.joined = False

    # --- set-up and commands ---------------------------------------------------

    def run(self) -> None:
        index = self.index
        self.source = create_source(
            self.spec.source, index, self.spec.width, self.spec.height, self.spec.fps,
            dict(self.spec.settings),
        )
        if hasattr(self.source, "copy_allowed"):  # one camera of a group may copy
            self.source.copy_allowed = int(self.state.globals[G_COPY_CAMERA]) == index
        self.source.open()
        send_to_controller(self.conn, Opened(*self._described(), self._template()))
        self._capture_loop()

    def _described(self) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        """The source's actual settings, its property metadata and its capture clock."""
        assert self.source is not None
        source = self.source
        return source.settings(), [p.to_dict() for p in source.properties()], source.capture_clock

    def _template(self) -> bytes:
        """The stream's description while the source is recorded by copy, else empty."""
        return getattr(self.source, "stream_template", b"") if self._copies() else b""

    def _copies(self) -> bool:
        return bool(getattr(self.source, "copies", False))

    def _handle_commands(self) -> None:
        self.commands_seen = int(self.state.cameras[self.index, C_COMMAND_SEQ])
        while self.conn.poll():
            command = self.conn.recv()
            if isinstance(command, AttachRing):
                self._attach_ring(command.name)
            elif isinstance(command, ApplySettings):
                self._apply(command.changes)

    def _attach_ring(self, name: str) -> None:
        """Start-up barrier step and ring swap: attach, drain stale frames, report ready."""
        assert self.source is not None
        if self.ring is not None:
            self.ring.close()
        self.ring = FrameRing.attach(name)
        self.source.flush()
        self.state.cameras[self.index, C_READY] = 1
        self.joined = True
        send_to_controller(self.conn, Attached(name))

    def _apply(self, changes: dict[str, Any]) -> None:
        """Apply settings while the group is held; a geometry change waits for a new ring."""
        assert self.source is not None
        before = self.source.settings()
        try:
            after = self.source.apply(changes)
        except SettingRejected as exc:
            send_to_controller(self.conn, Rejected(str(exc)))
            return
        reshape = any(before.get(key) != after.get(key) for key in _GEOMETRY_KEYS)
        if before.get("record") != after.get("record"):  # pictures <-> packets: a new ring
            self.source.close()
            self.source.open()
            reshape = True
        if reshape:
            self.period_ns = int(1e9 / float(after["fps"]))
            self.state.cameras[self.index, C_READY] = 0
            if self.ring is not None:
                self.ring.close()
                self.ring = None
        self.source.flush()
        send_to_controller(self.conn, Applied(*self._described(), reshape, self._template()))

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.ring is not None:
            self.ring.close()
            self.ring = None

    def _ride_out_outage(self) -> None:
        """The stream dropped: leave the gate (the controller parks this camera so the
        others keep running), reconnect with a growing backoff, then wait to rejoin."""
        source = self.source
        assert source is not None
        self.state.cameras[self.index, C_GRABBING] = 0
        send_to_controller(
            self.conn, StreamLost(f"{self.spec.camera_id}: stream lost, reconnecting"))
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        delay_s = _RECONNECT_FIRST_S
        while not self.state.globals[G_STOP] and self.parent.alive():
            if source.reconnect():  # type: ignore[attr-defined]
                send_to_controller(self.conn, Reconnected(*self._described(), self._template()))
                return
            deadline = time.monotonic() + delay_s
            while time.monotonic() < deadline and not self.state.globals[G_STOP]:
                time.sleep(_HELD_SLEEP_S * 50)
            delay_s = min(delay_s * 2, _RECONNECT_MAX_S)

    # --- the hot loop ------------------------------------------------------------

    def _capture_loop(self) -> None:
        state, index = self.state, self.index
        source = self.source
        assert source is not None
        cells = state.cameras[index]
        counts, ready, rooms, group = state.counts, state.ready, state.room, state.globals
        batches = state.writer_batch
        grab_history = state.grab_ns[index]
        monotonic_ns, time_ns = time.monotonic_ns, time.time_ns
        capture_ns, latch_at = source.capture_ns, source.latch_at
        wait_for_moment = source.wait_for_moment
        free_running = source.free_running
        gate_sleep_s = _FREE_GATE_SLEEP_S if free_running else _GATE_SLEEP_S
        frame_number = int(counts[index])
        waits = 0
        held = False
        copies = self._copies()
        doorbells = self.doorbells
        chain = -1  # a copy camera's packet chain: the frame number of its keyframe

        while not group[G_STOP]:
            if cells[C_COMMAND_SEQ] != self.commands_seen:
                self._handle_commands()
                frame_number = int(counts[index])  # a join sets it
                copies, chain = self._copies(), -1
                continue
            ring = self.ring
            # Hold gate: paused, updating, gathering at a record boundary, or not all ready.
            if ring is None or frame_number >= group[G_HOLD_AT] or not ready.all():
                held = True
                if not self.parent.alive():
                    return
                time.sleep(_HELD_SLEEP_S)
                continue
            if held:
                # What the camera made while the group was held belongs to no frame set:
                # not dropped, however short the hold (a take's start holds for a frame
                # or two), and stale if it piled up.
                source.flush()
                held = False
            # Sync gate: never ahead of the slowest camera, never over a frame any
            # camera's writer still needs (the whole set waits, so it stays one moment).
            cells[C_ROOM] = ring.room_until()
            if frame_number > counts.min() or frame_number > rooms.min():
                if not waits and frame_number > rooms.min():  # waiting on a writer: wake it
                    for doorbell in doorbells:
                        doorbell.ring()
                waits += 1
                if waits < _SPIN_WAITS:
                    os.sched_yield()
                else:
                    if not self.parent.alive():
                        return
                    time.sleep(gate_sleep_s)
                continue
            waits = 0
            moment = state.set_moment_ns(frame_number)
            anchor = group[G_SET_ANCHOR_NS]
            # A free-running camera waits for its frame of the moment (a gated source
            # waits in latch_at, if it waits at all); a long wait re-checks the hold first.
            if moment and free_running and not wait_for_moment(
                    moment, monotonic_ns() + _MAX_SET_WAIT_NS):
                continue
            if moment and free_running and not copies:
                copied = self._copied_moment(frame_number, moment)
                if copied != moment and not wait_for_moment(
                        copied, monotonic_ns() + _MAX_SET_WAIT_NS):
                    continue
                moment = copied
            cells[C_GRABBING] = 1
            # The controller raised the hold meanwhile, or a hold came and went while this
            # camera waited for the moment (the set clock restarted: a new moment is due).
            if frame_number >= group[G_HOLD_AT] or group[G_SET_ANCHOR_NS] != anchor:
                cells[C_GRABBING] = 0
                held = True
                continue

            before_grab = monotonic_ns()
            latched = latch_at(moment or before_grab)
            if latched == Latch.FAILED:
                if not hasattr(source, "reconnect"):
                    raise RuntimeError(f"camera {self.spec.camera_id} stopped delivering frames")
                self._ride_out_outage()
                copies, chain = self._copies(), -1
                continue
            after_grab = monotonic_ns()
            utc = time_ns()
            # Latch first, decode second: let cameras that woke with us take their
            # frames before this one spends a core on retrieving (sync on few cores). A
            # packet is only copied: nothing to make way for.
            if not copies:
                os.sched_yield()
            slot = ring.begin_write(frame_number)
            nbytes, key = 0, False
            if copies:
                nbytes, key = source.retrieve_packet(  # type: ignore[attr-defined]
                    ring.packet_buffer(frame_number))
            else:
                source.retrieve(slot, frame_number)
            after_retrieve = monotonic_ns()
            captured = capture_ns()  # a network stream knows it only once retrieved
            if captured is None:
                captured = after_grab
            flags = state.recording_flags(frame_number)  # before "grabbing" is cleared
            if latched == Latch.REPEAT:
                flags |= FLAG_REPEAT
            if copies:
                chain = self._copied(frame_number, latched, key, chain, captured, moment)
                if key:
                    flags |= FLAG_KEY
            cells[C_GRABBING] = 0
            ring.end_write(frame_number, before_grab, after_grab, after_retrieve, utc, flags,
                           captured, nbytes, source.device_frame, source.device_ns)
            grab_history[frame_number % GRAB_HISTORY] = captured  # the live spread's stamp
            cells[C_DROPPED] = source.dropped
            frame_number += 1
            counts[index] = frame_number
            # This camera completed a set of a take: wake writers (each after its batch).
            if group[G_FIRST_RECORDING] >= 0 and counts.min() >= frame_number:
                for row, doorbell in enumerate(doorbells):
                    if not frame_number % batches[row]:
                        doorbell.ring()
            # After publishing: the set never waits for the live view's picture.
            if copies and key and ring.watched():
                source.preview(ring.write_preview(frame_number - 1))  # type: ignore[attr-defined]
                ring.end_preview()
            # An orphan stops within PARENT_CHECK_S and 8 frames: a display watching its
            # ring must see the picture stop when the engine dies, not 2 s later.
            if not frame_number & 7 and not self.parent.alive():
                return

    def _copied_moment(self, frame_number: int, moment: int) -> int:
        """The moment a free-running camera samples its frame of set n at while the group
        has a camera recorded by copy: half a period after that camera's packet n was
        captured. That camera takes its packets in order, so its packet, not the set
        clock, says which moment set n shows: when its stream skipped a frame, or its
        packet came too late and repeats, the others follow, to the same moment. Waits
        (briefly, as at the sync gate) for that camera to take its packet; the set
        clock's moment when there is none or it did not come in time."""
        state = self.state
        copier = int(state.globals[G_COPY_CAMERA])
        if copier < 0 or not state.copy_published(frame_number - 1):
            return moment  # no camera is copied, or it was not in the last set
        give_up_ns = moment + (LATCH_WAIT_PERIODS + 2) * self.period_ns
        while (captured := state.copy_captured_ns(frame_number)) is None:
            if (state.counts[copier] >= PARKED or state.globals[G_STOP]
                    or time.monotonic_ns() > give_up_ns):
                return moment
            time.sleep(_FREE_GATE_SLEEP_S)
        return captured + self.period_ns // 2

    def _copied(self, frame_number: int, latched: Latch, key: bool, chain: int,
                captured: int, moment: int) -> int:
        """A copy camera's bookkeeping per packet: its chain into the control block (a
        keyframe starts one; a packet that does not follow the one before, or a repeat,
        ends it), its packet's capture time (every free-running camera's moment for the set:
        _copied_moment), and the set clock steered to half a period after its capture
        times (a jump over a quarter period at once, drift an eighth at a time), which
        gated cameras and every camera's deadlines follow. Returns the chain."""
        state = self.state
        source = self.source
        if latched == Latch.NEW and key:
            chain = frame_number
        elif latched != Latch.NEW or not source.follows:  # type: ignore[union-attr]
            chain = -1
        slot = frame_number % GRAB_HISTORY
        state.chain_from[slot] = chain
        state.chain_captured_ns[slot] = captured
        state.chain_frame[slot] = frame_number  # last: it says the two above are set
        if moment and latched == Latch.NEW:
            offset = captured + self.period_ns // 2 - moment
            step = offset if abs(offset) > self.period_ns // 4 else offset // 8
            state.globals[G_SET_SHIFT_NS] += step
        return chain
