"""One camera's recording writer: consumes every frame of its ring in order and encodes it.

The writer owns the ring's cursor while recording, which is what makes capture
wait instead of overwriting a frame not yet written. It records the frames the
camera flagged, once every camera of the group has published that frame
number, and finishes at the first frame flagged "finish" or at the
group's last recording frame, whichever it meets first (the latter is how a
recording ends when a camera died and will never publish that frame).

A camera recorded by copy has a packet ring: its writer muxes the packets as they are
(PacketFile). Its file can only begin at a keyframe and only go on along an unbroken
chain of packets, so every writer of the group skips the same frame sets: from the
start of each run of written frames (the take's start, a resume, or a skipped set) until
the copy camera's packet chain starts at a keyframe inside that run (the control block's
chain history). Finalizing reads those gaps off the timestamps' frame numbers.

Between frame sets it sleeps on its doorbell (engine/ipc/doorbell.py): no polling. The
camera that completes a frame set rings it, as does a camera waiting for room in a ring
and the controller when the take's end is set. A writer asks to be woken once per batch
of sets (its control-block cell): waking a Python process costs more CPU than muxing a
packet (cold caches: 0.1-0.3 ms on a 2-core VM), so a writer of copied packets is rung
twice a second; an encoder's writer ten times a second, a few sets at once, which cost
the cameras' grab timing nothing measurable (it runs at a lower priority).

It runs at a lower CPU priority than the cameras: a busy encoder slows the group
through backpressure rather than disturbing grab timing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from multiprocessing.connection import Connection

from engine.ipc.child import ParentWatch, single_threaded_opencv
from engine.ipc.control import G_LAST_RECORDING, G_STOP, GroupState
from engine.ipc.doorbell import Doorbell
from engine.ipc.messages import (
    Exit,
    Prepare,
    Prepared,
    PrepareFailed,
    RecordJob,
    StartWriting,
    WriterFinished,
)
from engine.ipc.ring import (
    FLAG_FINISH,
    FLAG_KEY,
    FLAG_RECORD,
    FLAG_REPEAT,
    M_AFTER_GRAB,
    M_AFTER_PUBLISH,
    M_AFTER_RETRIEVE,
    M_BEFORE_GRAB,
    M_CAPTURE,
    M_DEVICE_FRAME,
    M_DEVICE_NS,
    M_FLAGS,
    M_FRAME,
    M_SEQ,
    M_UTC,
    FrameRing,
)
from engine.recording.encoder import X264, VideoEncoder
from engine.recording.errors import RecordingError
from engine.recording.packet_file import PacketFile
from engine.recording.timestamps import TimestampWriter
from engine.specs import HARDWARE_H264

_IDLE_POLL_S = 0.2
# The doorbell wakes the writer; this only bounds a wait whose ring raced past its look.
_SET_WAIT_S = 0.5
_WRITER_NICENESS = 10
_SYNC_INTERVAL_S = 0.5  # a power cut loses at most this much of what was recorded
# A writer of copied packets is woken about this often: muxing a packet costs less than
# waking a process (measured at 0.125 s: a third of the writer's CPU went to its 7.5
# wakes a second). An engine killed mid-take loses at most this much of its packets.
_PACKET_BATCH_S = 0.5
# An encoder's writer is woken per tenth of a second's sets: at 640x480 a wake per set
# cost a quarter of the encoding itself (writer / bare encoder 1.24-1.32x against
# 1.03-1.08x woken per 3 sets), and 4 x 720p30 takes kept their spread and rate.
_ENCODE_BATCH_S = 0.1


def writer_main(state_name: str, n_cameras: int, index: int, conn: Connection,
                doorbell: Doorbell) -> None:
    """Process entry point: serve one recording job after another for camera row index."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    single_threaded_opencv()
    with contextlib.suppress(OSError):  # priority is a nicety, not a requirement
        os.nice(_WRITER_NICENESS)
    parent = ParentWatch()
    state = GroupState.attach(state_name, n_cameras)
    try:
        while True:
            message = _next_command(conn, state, parent)
            if message is None or isinstance(message, Exit):
                break
            if isinstance(message, Prepare):
                _serve(message.job, conn, state, parent, doorbell, index)
    except (EOFError, OSError):
        pass  # the controller went away
    finally:
        state.close()
        doorbell.close()


def _next_command(conn: Connection, state: GroupState, parent: ParentWatch) -> object | None:
    """The next command, or None once the group stops or the controller is gone."""
    while not state.globals[G_STOP] and parent.alive():
        if conn.poll(_IDLE_POLL_S):
            return conn.recv()
    return None


def _serve(job: RecordJob, conn: Connection, state: GroupState, parent: ParentWatch,
           doorbell: Doorbell, index: int) -> None:
    """Open everything before the first frame is chosen, so the start-up cost of an
    encoder never lands on recorded frames and a file that cannot be opened fails the
    start instead of the recording; then record from the frame the controller names."""
    ring = FrameRing.attach(job.ring_name)
    video: VideoEncoder | PacketFile | None = None
    timestamps = None
    fallback = None
    try:
        if job.stream_template:
            video = PacketFile(job.video_path, job.stream_template, job.fps)
        else:
            video, fallback = _open_encoder(job)
        timestamps = TimestampWriter(job.timestamps_path)
    except Exception as exc:
        for opened in (video, ring):
            if opened is not None:
                with contextlib.suppress(Exception):
                    opened.close()
        conn.send(PrepareFailed(f"{job.video_path.stem}: {exc}"))
        return
    conn.send(Prepared(video.encoder_name if isinstance(video, VideoEncoder) else "", fallback))
    message = _next_command(conn, state, parent)
    if not isinstance(message, StartWriting):  # aborted before the first frame
        ring.cursor = -1
        for closer in (video, timestamps, ring):
            with contextlib.suppress(Exception):
                closer.close()
        return
    # The sets per ring of this writer's doorbell.
    batch_s = _PACKET_BATCH_S if job.stream_template else _ENCODE_BATCH_S
    state.writer_batch[index] = max(1, round(batch_s * job.fps))
    try:
        finished = _record(message.first_frame, ring, video, timestamps, state, parent,
                           doorbell)
    finally:
        state.writer_batch[index] = 1
    conn.send(finished)


def _open_encoder(job: RecordJob) -> tuple[VideoEncoder, str | None]:
    """The job's encoder and None; or, when a hardware encoder does not open here, libx264
    and the reason, so the take goes on (and its manifest says so)."""
    def open_with(encoder: str) -> VideoEncoder:
        return VideoEncoder(job.video_path, job.codec, job.width, job.height, job.fps,
                            crash_safe=True, channels=job.channels, encoder=encoder,
                            preset=job.preset, threads=job.threads)

    try:
        return open_with(job.encoder), None
    except RecordingError as exc:
        if job.encoder not in HARDWARE_H264.values():
            raise
        return open_with(X264), f"{job.encoder} did not open: {exc}"


def _record(
    first_frame: int,
    ring: FrameRing,
    video: VideoEncoder | PacketFile,
    timestamps: TimestampWriter,
    state: GroupState,
    parent: ParentWatch,
    doorbell: Doorbell,
) -> WriterFinished:
    """Record from first_frame; always release the ring cursor so capture never waits on us."""
    frame_number = first_frame
    frames = 0
    error: str | None = None
    run_start = first_frame  # the first frame of the current run of written frames
    next_sync = time.monotonic() + _SYNC_INTERVAL_S
    try:
        group = state.globals
        while True:
            last = group[G_LAST_RECORDING]
            if 0 <= last <= frame_number:
                break
            # Only complete frame sets: a frame every camera has published. If a camera
            # dies, its count caps every writer, so all files end on the same frame.
            if ring.latest < frame_number or state.counts.min() <= frame_number:
                if group[G_STOP] or not parent.alive():
                    error = "capture stopped before the recording's last frame"
                    break
                doorbell.wait(_SET_WAIT_S)
                continue
            meta = ring.metadata(frame_number).tolist()  # Python ints, read in one call
            if meta[M_FRAME] != frame_number or meta[M_SEQ] & 1:
                raise RuntimeError(f"frame {frame_number} was overwritten before it was written")
            flags = meta[M_FLAGS]
            if flags & FLAG_FINISH:
                break
            chain = state.copy_chain_from(frame_number)
            if flags & FLAG_RECORD and chain is not None and chain < run_start:
                run_start = frame_number + 1  # no keyframe yet: this set is in no file
            elif flags & FLAG_RECORD:
                if isinstance(video, PacketFile):
                    video.write(ring.packet(frame_number), bool(flags & FLAG_KEY))
                else:
                    video.write(ring.image(frame_number))
                timestamps.write(
                    frame_number,
                    meta[M_BEFORE_GRAB],
                    meta[M_AFTER_GRAB],
                    meta[M_AFTER_RETRIEVE],
                    meta[M_AFTER_PUBLISH],
                    meta[M_UTC],
                    meta[M_CAPTURE],
                    bool(flags & FLAG_REPEAT),
                    meta[M_DEVICE_FRAME],
                    meta[M_DEVICE_NS],
                )
                frames += 1
            else:
                run_start = frame_number + 1  # a paused frame: the file's chain breaks
            frame_number += 1
            ring.cursor = frame_number
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + _SYNC_INTERVAL_S
                timestamps.sync()
                video.sync()
    except Exception as exc:  # encoder or disk failure: report it, keep what was written
        error = _describe(exc)
    finally:
        ring.cursor = -1
        for closer in (video, timestamps):
            try:
                closer.close()
            except Exception as exc:
                error = error or _describe(exc)
        ring.close()
    return WriterFinished(frames, error, first_frame, frame_number)


def _describe(exc: Exception) -> str:
    """The user-facing reason, with the one cause that matters most spelled out."""
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in str(exc):
        return f"the disk is full: {exc}"
    return str(exc)
