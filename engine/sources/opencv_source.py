"""Cameras, video files and network streams read through cv2.VideoCapture.

One base class holds what all three share (opening, settings bookkeeping); the
subclasses differ in how they deliver, pace and recover:
- DrainedSource: a free-running capture read by a FrameDrain thread, for
  - DeviceSource: a USB/V4L2 camera; requests size/fps and reports what it got;
  - NetworkSource: an http(s)/rtsp(s) stream via FFmpeg, with bounded timeouts and
    reconnect.
- FileSource: a gated replay, retrieved straight into the caller's buffer, looping by
  default.
They stay in one module (over 400 lines) because they are one concept, VideoCapture's
behaviour, and a change to one (say, how a read is retried) is read against the others.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import cv2
import numpy as np

from engine.pacing import DeadlinePacer, sleep_until_ns
from engine.sources import Kind, SourceKind, validate_changes
from engine.sources.base import CaptureClock, Latch, PropertySpec, SettingRejected, SourceError
from engine.sources.drain import FrameDrain

# Measuring a network stream's rate at open (see true_rate).
RATE_PROBE_S = 1.5
RATE_PROBE_MAX_FRAMES = 120
RATE_PROBE_SKIP = 3  # first frames, often a burst from the server's buffer
RATE_PROBE_MIN_FRAMES = 8
STANDARD_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0,
                  5.0, 10.0, 12.5, 15.0, 20.0, 100.0, 120.0)

# Image controls of local cameras: (cv2 property, generic lower and upper limit). The
# true limits depend on the driver; the device's read-back shows what it accepted.
CONTROLS = {
    "exposure": (cv2.CAP_PROP_EXPOSURE, -13, 10_000),
    "gain": (cv2.CAP_PROP_GAIN, 0, 1024),
    "brightness": (cv2.CAP_PROP_BRIGHTNESS, -255, 255),
    "contrast": (cv2.CAP_PROP_CONTRAST, 0, 255),
    "auto_exposure": (cv2.CAP_PROP_AUTO_EXPOSURE, 0, 3),
}
FOURCCS = ("auto", "MJPG", "YUYV", "H264")
DEVICE_READ_TIMEOUT_S = 2.0  # a USB camera silent this long has failed
LATCH_WAIT_PERIODS = 3  # how long a set waits for a later frame to prove none is missing
RTP_WINDOW_NS = 10_000_000_000  # see RtpClock
# RTP over the RTSP connection by default: no packet lost on a busy network (a lost
# packet smears an H.264 frame) and no UDP port to clash with. "udp" saves latency.
RTSP_TRANSPORTS = ("tcp", "udp")
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
RTP_JUMP_NS = 2_000_000_000  # presentation times that jump further start a new mapping


class OpenCVSource:
    """What every VideoCapture-backed source shares; subclasses implement _open_capture()."""

    kind_label = "camera"
    capture_clock: CaptureClock = "after_grab"  # a subclass that knows better says so

    def __init__(
        self,
        parsed: SourceKind,
        width: int,
        height: int,
        fps: float,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name = parsed.display
        self._target = parsed.target
        self._requested = {"width": width, "height": height, "fps": float(fps)}
        self._options: dict[str, Any] = self._default_options()
        self._cap: cv2.VideoCapture | None = None
        self._actual: dict[str, Any] = {}
        self._store(validate_changes(self._specs(), settings or {}))

    # -- protocol --------------------------------------------------------------

    def open(self) -> None:
        if self._cap is not None:
            return
        self._cap = self._open_capture()
        self._actual = {
            "width": int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": self._reported_fps(),
        }

    def settings(self) -> dict[str, Any]:
        geometry = self._actual if self._cap is not None else self._requested
        return {**geometry, **self._options}

    def properties(self) -> list[PropertySpec]:
        return self._specs()

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        self._store(validate_changes(self._specs(), changes))
        return self.settings()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # -- for subclasses --------------------------------------------------------

    def _opened(self) -> cv2.VideoCapture:
        """The open capture; using a closed source is a SourceError, not an AttributeError."""
        if self._cap is None:
            raise SourceError(f"{self.kind_label} {self.name} is not open")
        return self._cap

    def _open_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def _default_options(self) -> dict[str, Any]:
        return {}

    def _option_specs(self) -> list[PropertySpec]:
        return []

    def _specs(self) -> list[PropertySpec]:
        values = self.settings()
        return [
            PropertySpec("width", "int", values["width"], 16, 7680, 2, read_only=True),
            PropertySpec("height", "int", values["height"], 16, 4320, 2, read_only=True),
            PropertySpec("fps", "float", values["fps"], 0.001, 1000, read_only=True),
            *self._option_specs(),
        ]

    def _store(self, values: dict[str, Any]) -> None:
        """Take validated changes into effect."""
        self._options.update(values)

    def _reported_fps(self) -> float:
        fps = self._opened().get(cv2.CAP_PROP_FPS)
        return float(fps) if 0 < fps <= 1000 else self._requested["fps"]


class DrainedSource(OpenCVSource):
    """A free-running capture read by a FrameDrain: no backlog forms while the group
    waits, is held or is slower, and each frame set takes the frame captured nearest at
    or before its moment. Frames no set took count as `dropped` (skipped); so do a
    stream's frames that were never decoded, where it numbers them (not yet known here).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._drain: FrameDrain | None = None
        self._taken = 0  # the drain's sequence number of the frame last latched
        self._skipped = 0
        self._captured_ns = 0  # capture time of the frame last retrieved
        super().__init__(*args, **kwargs)

    @property
    def free_running(self) -> bool:
        return True

    def grab(self) -> bool:
        """Latch the newest frame, waiting for one newer than the last latched."""
        if not self._wait_newer():
            return False
        assert self._drain is not None
        self._took(self._drain.latch_newest())
        return True

    def latch_at(self, moment_ns: int) -> Latch:
        """The frame captured nearest at or before the moment, decided once a frame
        captured after it has arrived (delivery jitter cannot change the choice then),
        waiting at most LATCH_WAIT_PERIODS of this camera's own frame period."""
        drain = self._drain
        if drain is None or drain.failed:
            return Latch.NEW if self.grab() else Latch.FAILED
        period_ns = 1e9 / float(self._actual.get("fps") or self._requested["fps"])
        drain.wait_past(moment_ns, moment_ns + round(LATCH_WAIT_PERIODS * period_ns))
        sequence = drain.latch_at(moment_ns)
        if not sequence:
            if self._taken:
                return Latch.REPEAT
            return Latch.NEW if self.grab() else Latch.FAILED  # nothing latched yet: wait
        self._took(sequence)
        return Latch.NEW

    def _took(self, sequence: int) -> None:
        self._skipped += max(0, sequence - self._taken - 1)
        self._taken = sequence

    def _wait_newer(self) -> bool:
        """A frame newer than the last latched came within the read timeout."""
        drain = self._drain
        return drain is not None and drain.wait_newer(self._taken, self._read_timeout_s())

    def _read_timeout_s(self) -> float:
        return self._options["read_timeout_ms"] / 1000

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        if self._drain is None:
            raise SourceError(f"{self.kind_label} {self.name} is not open")
        self._captured_ns = self._drain.copy_latched(out)

    def flush(self) -> None:
        """Frames that arrived while the group was held are not skipped ones."""
        if self._drain is not None:
            self._taken = self._drain.sequence

    @property
    def dropped(self) -> int:
        """Frames the camera delivered that no frame set used."""
        return self._skipped

    def capture_ns(self) -> int | None:
        return self._captured_ns or None

    def close(self) -> None:
        self._stop_drain()
        super().close()

    def _stamp(self, cap: cv2.VideoCapture, arrived_ns: int) -> int:
        """The capture time of the frame just read (see capture_clock)."""
        return arrived_ns

    def _start_drain(self) -> None:
        self._drain = FrameDrain(self._opened(), self.name, self._stamp)
        self._taken = 0

    def _stop_drain(self) -> None:
        """Stop reading; the read under way ends within the read timeout."""
        if self._drain is not None:
            self._drain.stop(self._read_timeout_s() + 1.0)
            self._drain = None


class DeviceSource(DrainedSource):
    """A local camera (index or /dev/videoN); V4L2 on Linux.

    Options: fourcc ("auto" or a pixel format such as MJPG, which many USB cameras need
    for high resolutions at full rate) and the image controls the backend reports
    (exposure, gain, brightness, contrast, auto_exposure), in the driver's own units.
    """

    capture_clock: CaptureClock = "driver"  # "arrival" when the driver's stamps are off

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._controls: dict[str, float] = {}
        self._supported: tuple[str, ...] = tuple(CONTROLS)
        self._read_back: dict[str, float] = {}  # the device's control values, read undrained
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Open, learn whether the driver stamps buffers on the monotonic clock, drain."""
        if self._cap is not None:
            return
        super().open()
        stamped_ns = driver_stamp_ns(self._opened())
        self.capture_clock = "driver" if plausible_stamp(stamped_ns, time.monotonic_ns()) \
            else "arrival"
        self._read_controls()
        self._start_drain()

    def _read_controls(self) -> None:
        """Read the controls back while no drain reads frames (VideoCapture is not
        thread-safe); settings() reports these."""
        cap = self._opened()
        self._read_back = {name: cap.get(CONTROLS[name][0]) for name in self._supported}

    def _stamp(self, cap: cv2.VideoCapture, arrived_ns: int) -> int:
        """V4L2's buffer timestamp (taken by the kernel when the frame was complete)."""
        if self.capture_clock == "driver":
            stamped_ns = driver_stamp_ns(cap)
            if plausible_stamp(stamped_ns, arrived_ns):
                return stamped_ns
        return arrived_ns

    def _read_timeout_s(self) -> float:
        return DEVICE_READ_TIMEOUT_S

    def settings(self) -> dict[str, Any]:
        values = super().settings()
        known = self._read_back if self._cap is not None else self._controls
        for name in self._supported:
            if name in known:
                values[name] = known[name]
        return values

    def _default_options(self) -> dict[str, Any]:
        return {"fourcc": "auto"}

    def _specs(self) -> list[PropertySpec]:
        values = self.settings()
        specs = [
            PropertySpec("width", "int", values["width"], 16, 7680, 2, reopen=True),
            PropertySpec("height", "int", values["height"], 16, 4320, 2, reopen=True),
            PropertySpec("fps", "float", values["fps"], 1, 1000, reopen=True),
            PropertySpec("fourcc", "choice", values["fourcc"], choices=FOURCCS, reopen=True),
        ]
        for name in self._supported:
            _prop, low, high = CONTROLS[name]
            specs.append(PropertySpec(name, "float", values.get(name), low, high))
        return specs

    def _open_capture(self) -> cv2.VideoCapture:
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        cap = cv2.VideoCapture(self._target, api)
        if not cap.isOpened():
            raise SourceError(f"cannot open camera {self.name}: device not found or busy")
        if self._options["fourcc"] != "auto":
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self._options["fourcc"]))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._requested["width"])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._requested["height"])
        cap.set(cv2.CAP_PROP_FPS, self._requested["fps"])
        self._supported = tuple(
            name for name, (prop, _low, _high) in CONTROLS.items() if cap.get(prop) != -1
        )
        for name, value in self._controls.items():
            if name in self._supported:
                cap.set(CONTROLS[name][0], value)
        if not cap.grab():  # some nodes open but stream nothing (e.g. UVC metadata nodes)
            cap.release()
            raise SourceError(
                f"cannot open camera {self.name}: it opened but sent no frame (busy, or not "
                "a capture device)"
            )
        return cap

    def _store(self, values: dict[str, Any]) -> None:
        controls = {k: values.pop(k) for k in list(values) if k in CONTROLS}
        geometry: dict[str, Any] = {
            k: values.pop(k) for k in ("width", "height", "fps") if k in values
        }
        if self._cap is not None and (geometry or values):
            self._reopen(geometry, values, controls)
            return
        if self._cap is not None:
            self._set_controls(controls)
        self._controls.update(controls)
        self._requested.update(geometry)
        self._options.update(values)

    def _set_controls(self, controls: dict[str, float]) -> None:
        """Set controls (with the drain stopped: VideoCapture is not thread-safe); if the
        device refuses one, restore the earlier ones and reject."""
        self._stop_drain()
        try:
            self._set_each(controls)
        finally:
            self._read_controls()
            self._start_drain()

    def _set_each(self, controls: dict[str, float]) -> None:
        cap = self._opened()
        done: dict[str, float] = {}
        for name, value in controls.items():
            prop = CONTROLS[name][0]
            previous = cap.get(prop)
            if not cap.set(prop, value):
                for undo_name, undo_value in done.items():
                    cap.set(CONTROLS[undo_name][0], undo_value)
                raise SettingRejected(f"camera {self.name} refused {name}={value:g}")
            done[name] = previous

    def _reopen(
        self, geometry: dict[str, Any], options: dict[str, Any], controls: dict[str, float]
    ) -> None:
        """Width, height, fps and pixel format only take effect on a fresh open."""
        before = (dict(self._requested), dict(self._options), dict(self._controls))
        self._requested.update(geometry)
        self._options.update(options)
        self._controls.update(controls)
        self.close()
        try:
            self.open()
        except SourceError as error:
            self._requested, self._options, self._controls = before
            self.open()
            raise SettingRejected(f"camera {self.name} cannot use {geometry | options}: "
                                  f"{error}") from error


class FileSource(OpenCVSource):
    """A video file replayed at its native rate; every frame is delivered (none dropped).

    A late caller slows the replay instead of skipping frames, so tests with real
    footage see every frame in order. Option: loop (default True; False makes grab()
    return False at the end of the file).
    """

    kind_label = "video file"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pacer = DeadlinePacer(self._requested["fps"])

    def open(self) -> None:
        super().open()
        self._pacer = DeadlinePacer(self._actual["fps"])

    @property
    def free_running(self) -> bool:
        return False

    def grab(self) -> bool:
        if not self._next_frame():
            return False
        self._pacer.wait()
        return True

    def latch_at(self, moment_ns: int) -> Latch:
        """The file's next frame, shown at the set's moment (the group's rate paces it)."""
        if not self._next_frame():
            return Latch.FAILED
        sleep_until_ns(moment_ns)
        return Latch.NEW

    def capture_ns(self) -> int | None:
        """A file cannot tell: the after-grab stamp stands in."""
        return None

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        ok, image = self._opened().retrieve(image=out)
        if not ok or image is None:
            raise SourceError(f"cannot decode a frame from {self.kind_label} {self.name}")
        if image is not out:
            _fit_into(image, out)

    def flush(self) -> None:
        self._pacer.reset()

    @property
    def dropped(self) -> int:
        """A file delivers every frame."""
        return 0

    def _next_frame(self) -> bool:
        """Latch the next frame, from the start again at the end when looping."""
        return self._opened().grab() or (self._options["loop"] and self._rewind())

    def _default_options(self) -> dict[str, Any]:
        return {"loop": True}

    def _option_specs(self) -> list[PropertySpec]:
        return [PropertySpec("loop", "bool", self._options["loop"])]

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise SourceError(f"cannot open video file {self.name}: not a readable video")
        return cap

    def _rewind(self) -> bool:
        cap = self._opened()
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return cap.grab()


class NetworkSource(DrainedSource):
    """An http(s)/rtsp(s) stream through OpenCV's FFmpeg backend.

    Open and read timeouts bound every blocking call, so an unreachable host fails
    in bounded time. A stream that fails or goes silent for the read timeout is retried
    briefly (reconnect_timeout_s, for blips) before grab() returns False;
    `reconnecting` is True meanwhile. A longer outage is the camera process's to ride
    out: it leaves the sync gate, so the rest of the rig keeps running, and calls
    reconnect() with a growing backoff. Capture times: an RTSP stream's RTP timestamps
    mapped onto the local clock (RtpClock), else each frame's arrival.
    """

    kind_label = "network camera"
    BACKOFF_S = (0.25, 0.5, 1.0, 2.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._reconnecting = False
        super().__init__(*args, **kwargs)
        rtsp = str(self._target).lower().startswith(("rtsp://", "rtsps://"))
        self._rtp = RtpClock() if rtsp else None
        self.capture_clock: CaptureClock = "rtp" if rtsp else "arrival"

    @property
    def reconnecting(self) -> bool:
        """True while grab() is re-establishing a lost stream."""
        return self._reconnecting

    def open(self) -> None:
        """Open, then measure the stream's true rate: many streams (MJPEG over HTTP, some
        RTSP cameras) declare none, and FFmpeg then reports a default 25 fps, which would
        tag every file of a recording with a wrong time axis. Then start draining."""
        opened = self._cap is None
        super().open()
        if opened:
            self._actual["fps"] = true_rate(self._actual["fps"], self._frame_times())
            self._skipped = 0
            self._start_drain()

    def grab(self) -> bool:
        """Latch the newest frame (see DrainedSource); a silent stream is reconnected."""
        if not self._wait_newer():
            self._stop_drain()
            if not self._reconnect():
                return False
            self._start_drain()
            if not self._wait_newer():
                return False
        assert self._drain is not None
        self._took(self._drain.latch_newest())
        return True

    def _stamp(self, cap: cv2.VideoCapture, arrived_ns: int) -> int:
        if self._rtp is None:
            return arrived_ns
        return self._rtp.capture_ns(cap.get(cv2.CAP_PROP_POS_MSEC), arrived_ns)

    def _start_drain(self) -> None:
        if self._rtp is not None:
            self._rtp.reset()  # a new connection starts a new RTP time line
        super()._start_drain()

    def _frame_times(self) -> list[float]:
        """The times (s) of about RATE_PROBE_S of the stream's frames: an RTSP stream's own
        presentation times (the camera's clock, untouched by the burst of buffered frames
        a server sends first), else each frame's arrival."""
        cap = self._opened()
        times: list[float] = []
        deadline = time.monotonic() + RATE_PROBE_S
        while time.monotonic() < deadline and len(times) < RATE_PROBE_MAX_FRAMES:
            if not cap.grab():
                break
            if self._rtp is not None:
                times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
            else:
                times.append(time.monotonic())
        return times

    def _default_options(self) -> dict[str, Any]:
        return {"open_timeout_ms": 5000, "read_timeout_ms": 5000, "reconnect_timeout_s": 2.0,
                "rtsp_transport": "tcp"}

    def _option_specs(self) -> list[PropertySpec]:
        return [
            PropertySpec("open_timeout_ms", "int", self._options["open_timeout_ms"], 100, 60_000),
            PropertySpec("read_timeout_ms", "int", self._options["read_timeout_ms"], 100, 60_000),
            PropertySpec("reconnect_timeout_s", "float", self._options["reconnect_timeout_s"],
                         0, 3600),
            PropertySpec("rtsp_transport", "choice", self._options["rtsp_transport"],
                         choices=RTSP_TRANSPORTS),
        ]

    def _open_capture(self) -> cv2.VideoCapture:
        timeout_ms = self._options["open_timeout_ms"]
        started = time.monotonic()
        cap = self._connect(timeout_ms)
        if cap.isOpened() and cap.grab():
            return cap
        cap.release()
        if time.monotonic() - started >= timeout_ms / 1000 * 0.9:
            reason = f"no stream within {timeout_ms / 1000:.1f} s"
        else:
            reason = "connection refused or not a video stream"
        raise SourceError(f"cannot open network camera {self.name}: {reason}")

    def _connect(self, open_timeout_ms: int) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._options["read_timeout_ms"]]
        # OpenCV reads FFmpeg's options from the environment at each open (this process
        # has one camera, so nothing else reads it meanwhile).
        os.environ[FFMPEG_OPTIONS_ENV] = f"rtsp_transport;{self._options['rtsp_transport']}"
        return cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG, params)

    def reconnect(self) -> bool:
        """One attempt to re-establish a lost stream; the caller paces the attempts."""
        self._stop_drain()
        if self._cap is not None:
            self._cap.release()
        self._cap = self._connect(self._options["open_timeout_ms"])
        if self._cap.isOpened() and self._cap.grab():
            self._start_drain()
            return True
        self._cap.release()
        return False

    def _reconnect(self) -> bool:
        """Release and reopen until a frame arrives or reconnect_timeout_s has passed."""
        self._reconnecting = True
        self._opened().release()
        deadline = time.monotonic() + self._options["reconnect_timeout_s"]
        attempt = 0
        try:
            while (remaining_s := deadline - time.monotonic()) > 0:
                timeout_ms = min(self._options["open_timeout_ms"], max(1, int(remaining_s * 1000)))
                self._cap = self._connect(timeout_ms)
                if self._cap.isOpened() and self._cap.grab():
                    return True
                self._cap.release()
                backoff = self.BACKOFF_S[min(attempt, len(self.BACKOFF_S) - 1)]
                time.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
                attempt += 1
            return False
        finally:
            self._reconnecting = False


def true_rate(declared: float, arrivals: list[float]) -> float:
    """The stream's frame rate from frame times (arrival or presentation): the
    least-squares slope of time against frame index, which a few late or bunched frames
    barely move (the first third of the time, often a burst of buffered frames, is left
    out). The declared rate is kept when it agrees within 1 %; a measured rate within
    1 % of a standard one is snapped to it."""
    times = arrivals[RATE_PROBE_SKIP:]
    if times:  # a server's buffered frames (up to a keyframe interval) come in a burst
        settled = times[0] + (times[-1] - times[0]) / 3
        times = [t for t in times if t >= settled]
    if len(times) < RATE_PROBE_MIN_FRAMES:
        return declared
    index = np.arange(len(times), dtype=np.float64)
    seconds = np.asarray(times, dtype=np.float64)
    slope = float(np.polyfit(index, seconds, 1)[0])
    if slope <= 0:
        return declared
    measured = 1.0 / slope
    if abs(measured - declared) <= 0.01 * declared:
        return declared
    nearest = min(STANDARD_RATES, key=lambda rate: abs(measured - rate))
    if abs(measured - nearest) <= 0.01 * nearest:
        return round(nearest, 3)
    return round(measured, 2)


def open_cv_source(
    parsed: SourceKind,
    width: int,
    height: int,
    fps: float,
    settings: dict[str, Any] | None = None,
) -> DeviceSource | FileSource | NetworkSource:
    """The VideoCapture-backed source class for a parsed device, file or network string."""
    classes: dict[Kind, type[DeviceSource | FileSource | NetworkSource]] = {
        Kind.DEVICE: DeviceSource, Kind.FILE: FileSource, Kind.NETWORK: NetworkSource}
    return classes[parsed.kind](parsed, width, height, fps, settings)


def _fit_into(image: np.ndarray, out: np.ndarray) -> None:
    """Bring a decoded frame that OpenCV could not write in place into `out` (BGR)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    convert = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}.get(channels)
    if image.shape[:2] == out.shape[:2]:
        if convert is None:
            np.copyto(out, image)
        else:
            cv2.cvtColor(image, convert, dst=out)
        return
    if convert is not None:
        image = cv2.cvtColor(image, convert)
    cv2.resize(image, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_AREA)


def driver_stamp_ns(cap: cv2.VideoCapture) -> int:
    """The buffer timestamp OpenCV's V4L2 backend reports for the frame last read (ns)."""
    return round(cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6)


def plausible_stamp(stamped_ns: int, now_ns: int) -> bool:
    """A driver stamp on the monotonic clock: before now, and less than a second ago
    (drivers that stamp with the wall clock or from zero fail this)."""
    return 0 <= now_ns - stamped_ns < 1_000_000_000


class RtpClock:
    """Maps a stream's presentation times (from RTP timestamps: the camera's clock) onto
    the local monotonic clock. offset = the smallest (arrival - pts) seen, i.e. the
    frame that travelled fastest; every frame's capture time is then pts + offset, free
    of network and decoder jitter. The minimum is taken over two windows of
    RTP_WINDOW_NS, so a slow drift between the camera's clock and ours is followed. A
    jump in the stream's times (a camera restart) starts a new mapping. Capture times
    never go back: while the mapping settles (a faster frame lowers the offset), a frame
    is given at least its predecessor's time."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._offsets = [2**63 - 1, 2**63 - 1]  # the previous window's minimum, this one's
        self._window_end_ns = 0
        self._last_pts_ns = -(2**63)
        self._last_captured_ns = 0

    def capture_ns(self, pts_ms: float, arrived_ns: int) -> int:
        pts_ns = round(pts_ms * 1e6)
        if not 0 <= pts_ns - self._last_pts_ns < RTP_JUMP_NS:
            self._offsets = [2**63 - 1, 2**63 - 1]
        self._last_pts_ns = pts_ns
        if arrived_ns >= self._window_end_ns:
            self._offsets = [self._offsets[1], 2**63 - 1]
            self._window_end_ns = arrived_ns + RTP_WINDOW_NS
        self._offsets[1] = min(self._offsets[1], arrived_ns - pts_ns)
        self._last_captured_ns = max(pts_ns + min(self._offsets), self._last_captured_ns)
        return self._last_captured_ns
