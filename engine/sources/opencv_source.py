"""USB cameras and video files read through cv2.VideoCapture.

- DeviceSource: a USB/V4L2 camera, free-running, read by a FrameDrain (see drained.py);
  requests size/fps and reports what it got; capture times from V4L2's buffer stamps.
- FileSource: a gated replay, retrieved straight into the caller's buffer, looping by
  default.
Network streams are read through PyAV (network.py): it exposes what OpenCV hides (RTCP
sender reports, undecoded packets).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import cv2
import numpy as np

from engine.pacing import DeadlinePacer, sleep_until_ns
from engine.sources import Kind, SourceKind
from engine.sources.base import CaptureClock, Latch, PropertySpec, SettingRejected, SourceError
from engine.sources.configured import ConfiguredSource
from engine.sources.drained import DrainedSource
from engine.sources.fit import fit_into
from engine.specs import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH

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


class OpenCVSource(ConfiguredSource):
    """What every VideoCapture-backed source shares; subclasses implement _open_capture()."""

    capture_clock: CaptureClock = "after_grab"  # a subclass that knows better says so

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._cap: cv2.VideoCapture | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self._cap is not None:
            return
        self._cap = self._open_capture()
        self._actual = {
            "width": int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": self._reported_fps(),
        }

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        super().close()

    def _opened(self) -> cv2.VideoCapture:
        """The open capture; using a closed source is a SourceError, not an AttributeError."""
        if self._cap is None:
            raise SourceError(f"{self.kind_label} {self.name} is not open")
        return self._cap

    def _open_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def _reported_fps(self) -> float:
        fps = self._opened().get(cv2.CAP_PROP_FPS)
        return float(fps) if 0 < fps <= 1000 else self._requested["fps"]


class _DeviceReader:
    """A drain's reader of a local camera: decodes into the spare buffer, stamps each
    frame with the driver's buffer time where it is plausible, else its arrival."""

    def __init__(self, cap: cv2.VideoCapture, driver_stamps: bool) -> None:
        self._cap = cap
        self._driver_stamps = driver_stamps

    def read(self, spare: Any) -> tuple[np.ndarray, int] | None:
        ok, image = self._cap.read(spare)
        arrived_ns = time.monotonic_ns()
        if not ok or image is None:
            return None
        if self._driver_stamps:
            stamped_ns = driver_stamp_ns(self._cap)
            if plausible_stamp(stamped_ns, arrived_ns):
                return image, stamped_ns
        return image, arrived_ns

    def develop(self, picture: np.ndarray, out: np.ndarray) -> None:
        fit_into(picture, out)


class DeviceSource(DrainedSource, OpenCVSource):
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

    def _reader(self) -> _DeviceReader:
        """V4L2's buffer timestamps (taken by the kernel when the frame was complete)."""
        return _DeviceReader(self._opened(), self.capture_clock == "driver")

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
        # OpenCV cannot list a camera's modes: no `modes`, the size is typed. The controls'
        # defaults are the driver's, which it does not tell: none.
        specs = [
            PropertySpec("width", "int", values["width"], 16, 7680, 2, reopen=True,
                         default=DEFAULT_WIDTH),
            PropertySpec("height", "int", values["height"], 16, 4320, 2, reopen=True,
                         default=DEFAULT_HEIGHT),
            PropertySpec("fps", "float", values["fps"], 1, 1000, reopen=True,
                         default=DEFAULT_FPS),
            PropertySpec("fourcc", "choice", values["fourcc"], choices=FOURCCS, reopen=True,
                         default=self._default_options()["fourcc"]),
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
            fit_into(image, out)

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


def open_cv_source(
    parsed: SourceKind,
    width: int,
    height: int,
    fps: float,
    settings: dict[str, Any] | None = None,
) -> DeviceSource | FileSource:
    """The VideoCapture-backed source class for a parsed device or file string."""
    classes: dict[Kind, type[DeviceSource | FileSource]] = {
        Kind.DEVICE: DeviceSource, Kind.FILE: FileSource}
    return classes[parsed.kind](parsed, width, height, fps, settings)


def driver_stamp_ns(cap: cv2.VideoCapture) -> int:
    """The buffer timestamp OpenCV's V4L2 backend reports for the frame last read (ns)."""
    return round(cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6)


def plausible_stamp(stamped_ns: int, now_ns: int) -> bool:
    """A driver stamp on the monotonic clock: before now, and less than a second ago
    (drivers that stamp with the wall clock or from zero fail this)."""
    return 0 <= now_ns - stamped_ns < 1_000_000_000
