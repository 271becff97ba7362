"""Network cameras: rtsp(s), http(s), rtmp(s) and udp streams, read through PyAV (FFmpeg).

PyAV rather than OpenCV because it shows what a time-true recorder needs and OpenCV
hides: each RTSP packet's RTCP sender report (the camera's wall clock against its media
clock), FFmpeg's own errors (a 401 is "wrong password", not "not a video stream"), and
undecoded packets, so an intra-only stream (MJPEG) decodes only the frames a set takes.

Open and read timeouts bound every blocking call, so an unreachable host fails in
bounded time. A stream that fails (the connection closed or broke) or goes silent for the
read timeout makes latch_at() answer FAILED at once; no reconnecting happens inside the
sync gate, where every other camera would wait. An outage is the camera process's to ride
out: it leaves the gate, so the rest of the rig keeps running, and calls reconnect() with
a growing backoff until the stream is back, then rejoins the group.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections import deque
from typing import Any

import av
import av.container
import av.error
import av.packet
import av.video.codeccontext
import av.video.frame
import av.video.stream
import cv2
import numpy as np

from engine.sources.arrival_clock import ArrivalClock
from engine.sources.base import CaptureClock, Latch, PropertySpec, SourceError
from engine.sources.drain import DEPTH, FrameDrain
from engine.sources.drained import DrainedSource
from engine.sources.ffmpeg_log import opening
from engine.sources.fit import fit_into
from engine.sources.rtp_clock import RtpClock, ntp_to_unix_ns
from engine.sources.stream_options import ffmpeg_options
from engine.sources.stream_problems import NO_VIDEO, explain, unsupported_codec
from engine.sources.stream_template import describe_stream

# Measuring a stream's rate at open (see true_rate).
RATE_PROBE_S = 1.5
RATE_PROBE_MAX_FRAMES = 120
RATE_PROBE_SKIP = 3  # first frames, often a burst from the server's buffer
RATE_PROBE_MIN_FRAMES = 8
STANDARD_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0,
                  5.0, 10.0, 12.5, 15.0, 20.0, 100.0, 120.0)
# How long an RTSP open waits for the camera's first sender report (RFC 3550 sends the
# first within 2.5 s +- half, so 4 s sees it from nearly every camera that sends them).
RTCP_WAIT_S = 4.0
# RTP over the RTSP connection by default: no packet lost on a busy network (a lost
# packet smears an H.264 frame) and no UDP port to clash with. "udp" saves latency.
RTSP_TRANSPORTS = ("tcp", "udp")
# Recording a camera's own packets (copy) rather than decoding and encoding them again:
# H.264 and H.265 without B-frames (packets in capture order, so one packet is one set).
COPY_CODECS = ("h264", "hevc")
RECORD_MODES = ("auto", "copy", "encode")
COPY_DEPTH_S = 2.0  # packets kept for a copy camera's process that comes late
FULL_RANGE = 2  # AVCOL_RANGE_JPEG: full-range YUV, which the limited-range formula misreads
# FFmpeg's AVRTCPSenderReport as packet side data: ssrc, (padding), NTP time, RTP time.
_SENDER_REPORT = struct.Struct("=I4xQI")


class _StreamReader:
    """A drain's reader of one open container's video stream.

    Intra-only streams (MJPEG) are handed on as packets and decoded in develop(), only
    for frames a set takes; other codecs need every frame decoded (later frames refer to
    earlier ones) and are handed on as decoded frames, converted to BGR in develop().
    A stream recorded by copy (keep_packets) is handed on as packets of any codec: only
    its keyframes are decoded, for the live view.
    """

    def __init__(self, container: av.container.InputContainer, clock: RtpClock | None,
                 arrivals: ArrivalClock | None) -> None:
        self._container = container
        self._stream: av.video.stream.VideoStream = container.streams.video[0]
        self._packets = container.demux(self._stream)
        self._clock = clock
        self._arrivals = arrivals
        codec = self._stream.codec_context
        self._compressed = bool(codec.codec.intra_only)
        self._developer: av.video.codeccontext.VideoCodecContext | None = None
        if self._compressed:
            self._developer = self._new_developer()
        self._decoded: deque[tuple[av.video.frame.VideoFrame, int]] = deque()
        self._i420 = np.empty((0, 0), np.uint8)  # develop()'s conversion buffer
        time_base = self._stream.time_base
        self._tick_ns = (1_000_000_000 * time_base.numerator, time_base.denominator) \
            if time_base else (0, 1)
        self._first_report: tuple[int, int] | None = None  # (RTP time, pts ns) of the first
        self.last_pts_ns: int | None = None  # of the frame read last
        self.last_arrived_ns = 0
        self.failure = ""  # why the last read() returned None

    def _new_developer(self) -> av.video.codeccontext.VideoCodecContext:
        """A decoder of its own: develop() runs on the camera's thread."""
        codec = self._stream.codec_context
        developer = av.CodecContext.create(codec.name, "r")
        assert isinstance(developer, av.video.codeccontext.VideoCodecContext)
        if codec.extradata:  # parameter sets a stream may send only out of band (SDP)
            developer.extradata = codec.extradata
        return developer

    def use_arrivals(self, arrivals: ArrivalClock) -> None:
        """Time frames by the camera's clock fitted under their arrivals from now on."""
        self._arrivals = arrivals

    def keep_packets(self) -> av.packet.Packet | None:
        """Hand on packets from now on, undecoded (a stream recorded by copy); return the
        next packet, to describe the stream by (None: the stream failed)."""
        self._compressed = True
        self._developer = self._new_developer()
        self._decoded.clear()
        while True:
            try:
                packet = next(self._packets)
            except (StopIteration, av.error.FFmpegError, OSError) as error:
                self.failure = explain(error) if str(error) else "the stream ended"
                return None
            if packet.size:
                return packet

    def read(self, spare: Any) -> tuple[Any, int] | None:
        while not self._decoded:
            try:
                packet = next(self._packets)
            except StopIteration:
                self.failure = "the stream ended"
                return None
            except (av.error.FFmpegError, OSError) as error:
                self.failure = explain(error)
                return None
            arrived_ns = time.monotonic_ns()
            if self._clock is not None and packet.has_sidedata("rtcp_sr"):
                self._sender_report(packet, arrived_ns)
            if packet.size == 0:
                continue  # the demuxer's flush marker
            if self._compressed:
                return packet, self._capture_ns(packet.pts, arrived_ns)
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged packet, or frames before the first keyframe
            self._decoded.extend((frame, arrived_ns) for frame in frames)
        frame, arrived_ns = self._decoded.popleft()
        return frame, self._capture_ns(frame.pts, arrived_ns)

    def develop(self, picture: Any, out: np.ndarray) -> None:
        if self._developer is not None:
            try:
                frames = self._developer.decode(picture)
            except av.error.FFmpegError as error:
                raise SourceError(f"a damaged frame ({explain(error)})") from error
            if not frames:
                raise SourceError("a frame that does not decode")
            picture = frames[-1]
        height, width = out.shape[:2]
        if self._i420.shape != (height * 3 // 2, width):
            self._i420 = np.empty((height * 3 // 2, width), np.uint8)
        if not yuv420p_into(picture, out, self._i420):
            fit_into(picture.to_ndarray(format="bgr24"), out)

    def _ns(self, pts: int) -> int:
        return pts * self._tick_ns[0] // self._tick_ns[1]

    def _capture_ns(self, pts: int | None, arrived_ns: int) -> int:
        self.last_arrived_ns = arrived_ns
        self.last_pts_ns = None if pts is None else self._ns(pts)
        if self._arrivals is not None:
            return self._arrivals.capture_ns(arrived_ns)
        if self._clock is None or self.last_pts_ns is None:
            return arrived_ns
        return self._clock.capture_ns(self.last_pts_ns, arrived_ns)

    def _sender_report(self, packet: av.packet.Packet, arrived_ns: int) -> None:
        """Hand the clock a sender report, its RTP time turned into a presentation time:
        FFmpeg's start_time_realtime is the camera's wall clock at pts 0 by the first
        report; later reports are placed by their RTP time's distance from the first."""
        started_us = self._container.start_time_realtime
        if not started_us or packet.pts is None or self._clock is None:
            return
        _ssrc, ntp, rtp_time = _SENDER_REPORT.unpack_from(bytes(packet.get_sidedata("rtcp_sr")))
        wall_ns = ntp_to_unix_ns(ntp)
        if self._first_report is None:
            self._first_report = (rtp_time, wall_ns - started_us * 1000)
        first_rtp, first_pts_ns = self._first_report
        ticks = (rtp_time - first_rtp + 2**31) % 2**32 - 2**31  # RTP time wraps at 2**32
        pts_ns = first_pts_ns + self._ns(ticks)
        self._clock.sender_report(wall_ns, pts_ns, arrived_ns, self._ns(packet.pts))


def _is_key(packet: av.packet.Packet) -> bool:
    return bool(packet.is_keyframe)


def yuv420p_into(frame: av.video.frame.VideoFrame, out: np.ndarray, i420: np.ndarray) -> bool:
    """Limited-range yuv420p (what H.264 cameras send) into out (BGR) through i420, a
    buffer of out's height * 3 / 2 rows kept from frame to frame: half the cost of PyAV's
    conversion, which allocates each time, with the same coefficients (BT.601). False,
    nothing written: another format, range or size."""
    height, width = out.shape[:2]
    if (frame.format.name != "yuv420p" or frame.color_range == FULL_RANGE
            or (frame.height, frame.width) != (height, width)):
        return False
    quarter = (height // 2) * (width // 2)
    chroma = i420[height:].reshape(-1)
    targets = (i420[:height], chroma[:quarter].reshape(height // 2, width // 2),
               chroma[quarter:].reshape(height // 2, width // 2))
    for plane, target in zip(frame.planes, targets, strict=True):
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        np.copyto(target, rows[:, :plane.width])
    cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420, dst=out)
    return True


class NetworkSource(DrainedSource):
    """A network stream (see NETWORK_SCHEMES). Capture times: an RTSP stream's RTP timestamps mapped
    onto the local clock (RtpClock: by sender reports where usable); any other stream's
    from the camera's steady clock fitted under its frames' arrivals (ArrivalClock)."""

    kind_label = "network camera"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._container: av.container.InputContainer | None = None
        self._stream_reader: _StreamReader | None = None
        self.copy_allowed = True  # False: another camera of the group is recorded by copy
        self.copies = False  # this stream's packets are recorded as they come (copy)
        self.stream_template = b""  # its description for the writer, while it copies
        self.follows = False  # the packet latched last continues the chain before it
        self._leapt = False  # flush() left packets out since the last latch
        super().__init__(*args, **kwargs)
        self._rtsp = str(self._target).lower().startswith(("rtsp://", "rtsps://"))
        self._rtp = RtpClock() if self._rtsp else None
        self._arrivals: ArrivalClock | None = None  # other streams', once their rate is known
        self.capture_clock: CaptureClock = "rtp" if self._rtsp else "arrival_fit"

    def open(self) -> None:
        """Connect, then measure the stream's true rate: many streams (MJPEG over HTTP,
        some RTSP cameras) declare none, and FFmpeg then reports a default 25 fps, which
        would tag every file of a recording with a wrong time axis. An RTSP open also
        waits a little for the camera's first sender report (RTCP_WAIT_S). Then drain."""
        if self._container is not None:
            return
        self._arrivals = None  # the probe times frames by arrival
        timeout_ms = self._options["open_timeout_ms"]
        started = time.monotonic()
        try:
            self._connect(timeout_ms / 1000)
        except SourceError as error:
            reason = str(error)
            if time.monotonic() - started >= timeout_ms / 1000 * 0.9:
                reason = f"no stream within {timeout_ms / 1000:.1f} s"
            raise SourceError(f"cannot open network camera {self.name}: {reason}") from None
        assert self._container is not None
        stream = self._container.streams.video[0]
        declared = float(stream.average_rate or stream.guessed_rate or self._requested["fps"])
        times = self._probe()
        self._actual = {"width": stream.codec_context.width,
                        "height": stream.codec_context.height,
                        "fps": true_rate(declared, times)}
        if self._rtp is not None:
            self.capture_clock = "rtcp" if self._rtp.reported else "rtp"
        else:  # from here on, frames are timed by the camera's clock fitted under arrivals
            rate = measured_rate(times) or self._actual["fps"]
            self._arrivals = ArrivalClock(1e9 / rate)
            self._reader().use_arrivals(self._arrivals)
        self._skipped = 0
        self.copies = self._copy_decision(stream)
        if self.copies:
            self._keep_packets(stream)
        self._start_drain()

    def _copy_decision(self, stream: av.video.stream.VideoStream) -> bool:
        """Whether this stream is recorded by copy: `record` says so, or ("auto") it is
        H.264/H.265 without B-frames and no other camera of the group copies."""
        mode = self._options["record"]
        codec = stream.codec_context
        copyable = codec.name in COPY_CODECS and not codec.has_b_frames
        if mode == "copy" and not copyable:
            what = f"{codec.name} with B-frames" if codec.name in COPY_CODECS else codec.name
            raise SourceError(f"cannot record network camera {self.name} by copy: it sends "
                              f"{what}; copy takes H.264 or H.265 without B-frames "
                              '(record = "encode" records it re-encoded)')
        if mode == "copy" and not self.copy_allowed:
            raise SourceError(f"cannot record network camera {self.name} by copy: another "
                              "camera of the rig is recorded by copy, and a group keeps one "
                              '(record = "encode" records this one re-encoded)')
        return mode == "copy" or (mode == "auto" and copyable and self.copy_allowed)

    def _keep_packets(self, stream: av.video.stream.VideoStream) -> None:
        packet = self._reader().keep_packets()
        if packet is None:
            raise SourceError(f"cannot open network camera {self.name}: "
                              f"{self._reader().failure}")
        self.stream_template = describe_stream(stream, packet)

    def _start_drain(self) -> None:
        """A copy camera's drain keeps COPY_DEPTH_S of packets: one it loses breaks the
        chain of packets until the next keyframe."""
        if not self.copies:
            super()._start_drain()
            return
        fps = float(self._actual.get("fps") or self._requested["fps"])
        self._drain = FrameDrain(self._reader(), self.name, max(DEPTH, round(COPY_DEPTH_S * fps)))
        self._taken = 0

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        """A copy camera takes its next packet as soon as it is here (it steers the set
        clock onto its packets, so that packet belongs to the set); any other camera
        waits for the frame of the moment."""
        drain = self._drain
        if not self.copies or drain is None:
            return super().wait_for_moment(moment_ns, limit_ns)
        deadline_ns = self._latch_deadline_ns(moment_ns)
        return drain.wait_next(min(deadline_ns, limit_ns)) or drain.failed or \
            limit_ns >= deadline_ns

    def latch_at(self, moment_ns: int) -> Latch:
        """A copy camera takes its packets in order (see FrameDrain.latch_next), skipping
        only to a keyframe; any other camera the frame nearest the moment."""
        drain = self._drain
        if not self.copies or drain is None:
            return super().latch_at(moment_ns)
        drain.wait_next(self._latch_deadline_ns(moment_ns))
        sequence, follows = drain.latch_next(moment_ns, _is_key)
        self.follows = follows and not self._leapt
        self._leapt = False
        if sequence:
            self._took(sequence)
            return Latch.NEW
        return Latch.FAILED if drain.failed or not drain.latched else Latch.REPEAT

    def flush(self) -> None:
        """A copy camera held for a while goes on from its newest packet: the packets it
        leaves out end its chain (the next packet does not follow the latched one)."""
        if self.copies and self._drain is not None:
            self._drain.latch_newest()
            self._taken = self._drain.latched
            self._leapt = True
            return
        super().flush()

    def retrieve_packet(self, out: np.ndarray) -> tuple[int, bool]:
        """Copy the latched packet into `out` (a ring slot's bytes); return its length and
        whether it is a keyframe."""
        drain = self._drain
        packet = drain.latched_picture() if drain is not None else None
        if packet is None:
            raise SourceError(f"{self.kind_label} {self.name} has no packet latched")
        size = packet.size
        if size > out.size:
            raise SourceError(f"{self.kind_label} {self.name} sent a packet of {size} bytes, "
                              f"more than a raw picture ({out.size})")
        out.data[:size] = packet  # a memcpy, without numpy's indexing machinery
        self._captured_ns = drain.latched_captured_ns()  # type: ignore[union-attr]
        return size, bool(packet.is_keyframe)

    def preview(self, out: np.ndarray) -> None:
        """Decode the latched packet into out for the live view if it is a keyframe (the
        only packets of a copied stream decoded on their own); a damaged one leaves the
        previous picture."""
        drain = self._drain
        packet = drain.latched_picture() if drain is not None else None
        if packet is None or not packet.is_keyframe:
            return
        with contextlib.suppress(SourceError):
            self._reader().develop(packet, out)

    def close(self) -> None:
        super().close()
        self._disconnect()

    def _reader(self) -> _StreamReader:
        if self._stream_reader is None:
            raise SourceError(f"{self.kind_label} {self.name} is not open")
        return self._stream_reader

    def _probe(self) -> list[float]:
        """Read about RATE_PROBE_S of frames (an RTSP stream: until its first sender
        report, at most RTCP_WAIT_S) and return their times (s): an RTSP stream's own
        presentation times (the camera's clock, untouched by the burst of buffered frames
        a server sends first), else each frame's arrival."""
        reader = self._reader()
        times: list[float] = []
        started = time.monotonic()
        while True:
            measuring = (len(times) < RATE_PROBE_MAX_FRAMES
                         and time.monotonic() - started < RATE_PROBE_S)
            if not measuring and not self._awaiting_report(started):
                return times
            if reader.read(None) is None:
                raise SourceError(f"cannot open network camera {self.name}: {reader.failure}")
            if not measuring:
                continue
            if self._rtsp and reader.last_pts_ns is not None:
                times.append(reader.last_pts_ns / 1e9)
            else:
                times.append(reader.last_arrived_ns / 1e9)

    def _awaiting_report(self, started: float) -> bool:
        return (self._rtp is not None and not self._rtp.reported
                and time.monotonic() - started < RTCP_WAIT_S)

    def _default_options(self) -> dict[str, Any]:
        return {"open_timeout_ms": 5000, "read_timeout_ms": 5000, "rtsp_transport": "tcp",
                "record": "auto",
                "tls_verify": True}

    def _option_specs(self) -> list[PropertySpec]:
        return [
            PropertySpec("open_timeout_ms", "int", self._options["open_timeout_ms"], 100, 60_000),
            PropertySpec("read_timeout_ms", "int", self._options["read_timeout_ms"], 100, 60_000),
            PropertySpec("rtsp_transport", "choice", self._options["rtsp_transport"],
                         choices=RTSP_TRANSPORTS),
            PropertySpec("record", "choice", self._options["record"], choices=RECORD_MODES,
                         reopen=True),
            PropertySpec("tls_verify", "bool", self._options["tls_verify"]),
        ]

    def _connect(self, open_timeout_s: float) -> None:
        """Open the container and its reader; SourceError says why it would not."""
        url = str(self._target)
        with opening() as lines:  # FFmpeg's lines go to the engine's log, not the terminal
            try:
                container = av.open(url, options=ffmpeg_options(url, self._options),
                                    timeout=(open_timeout_s, self._read_timeout_s()))
            except (av.error.FFmpegError, OSError) as error:
                raise SourceError(explain(error, url, lines)) from None
        if not container.streams.video:
            container.close()
            raise SourceError(NO_VIDEO)
        if container.streams.video[0].codec_context is None:  # FFmpeg has no decoder for it
            container.close()
            raise SourceError(unsupported_codec(lines))
        self._container = container
        for clock in (self._rtp, self._arrivals):
            if clock is not None:
                clock.reset()  # a new connection starts a new time line
        self._stream_reader = _StreamReader(container, self._rtp, self._arrivals)

    def _disconnect(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._stream_reader = None

    def _connected(self, open_timeout_s: float) -> bool:
        """One connection attempt that ends with a frame read; the drain is not running."""
        self._disconnect()
        try:
            self._connect(open_timeout_s)
        except SourceError:
            return False
        if self._reader().read(None) is None:
            self._disconnect()
            return False
        return True

    def reconnect(self) -> bool:
        """One attempt (of at most the open timeout) to re-establish a lost stream, outside
        the sync gate; the caller paces the attempts."""
        self._stop_drain()
        if self._connected(self._options["open_timeout_ms"] / 1000):
            if self.copies:  # the new connection's packets, and its stream described anew
                assert self._container is not None
                self._keep_packets(self._container.streams.video[0])
            self._start_drain()
            return True
        return False


def true_rate(declared: float, arrivals: list[float]) -> float:
    """The stream's frame rate for its files: the measured rate (measured_rate), or the
    declared one when they agree within 1 %; a measured rate within 1 % of a standard one
    is snapped to it."""
    measured = measured_rate(arrivals)
    if measured is None or abs(measured - declared) <= 0.01 * declared:
        return declared
    nearest = min(STANDARD_RATES, key=lambda rate: abs(measured - rate))
    if abs(measured - nearest) <= 0.01 * nearest:
        return round(nearest, 3)
    return round(measured, 2)


def measured_rate(arrivals: list[float]) -> float | None:
    """The frame rate frame times (s, arrival or presentation) show, or None with too few:
    the median of the slopes between every pair of frames (Theil-Sen), which late,
    stalled or bunched frames barely move, fitted again on the frames that came least
    late (the first third of the time, often a burst of buffered frames, is left out)."""
    times = arrivals[RATE_PROBE_SKIP:]
    if times:  # a server's buffered frames (up to a keyframe interval) come in a burst
        settled = times[0] + (times[-1] - times[0]) / 3
        times = [t for t in times if t >= settled]
    if len(times) < RATE_PROBE_MIN_FRAMES:
        return None
    index = np.arange(len(times))
    seconds = np.asarray(times, dtype=np.float64)
    slope = _median_slope(index, seconds)
    # Frames come late, never early: fit again on the half that came least late, which
    # leaves out a stall and the burst after it.
    punctual = np.argsort(seconds - slope * index)[: max(RATE_PROBE_MIN_FRAMES, len(times) // 2)]
    slope = _median_slope(index[np.sort(punctual)], seconds[np.sort(punctual)])
    return 1.0 / slope if slope > 0 else None


def _median_slope(index: np.ndarray, seconds: np.ndarray) -> float:
    """Theil-Sen: the median of the slopes between every pair of points."""
    first, second = np.triu_indices(len(seconds), k=1)
    return float(np.median((seconds[second] - seconds[first]) / (index[second] - index[first])))
