"""USB cameras and video files read through cv2.VideoCapture.

- DeviceSource: a USB/V4L2 camera, free-running, read by a FrameDrain (see drained.py);
  requests size/fps and reports what it got; capture times from V4L2's buffer stamps.
- FileSource: a gated replay, retrieved straight into the caller's buffer, looping by
  default.
Network streams are read through PyAV (network.py): it exposes what OpenCV hides (RTCP
sender reports, undecoded packets).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from typing import Any

import cv2
import numpy as np

from engine.pacing import DeadlinePacer, sleep_until_ns
from engine.sources import Kind, SourceKind, coerce_setting
from engine.sources.base import CaptureClock, Latch, PropertySpec, SettingRejected, SourceError
from engine.sources.capture_format import (
    AUTO,
    DECODABLE,
    choose_format,
    format_modes,
    offered_formats,
)
from engine.sources.configured import ConfiguredSource
from engine.sources.drained import DrainedSource
from engine.sources.fit import fit_into
from engine.sources.v4l2_device import Control, V4L2Device, fourcc_text
from engine.specs import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH

log = logging.getLogger(__name__)

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
    """A local camera: an index, /dev/videoN, or a stable /dev/v4l/by-id|by-path link
    (opened through the node it points at now); V4L2 on Linux.

    Frames come through OpenCV's V4L2 reader; what the camera offers is asked of its driver
    (v4l2_device.py). Options: fourcc, the capture format ("auto": MJPG where the camera
    offers the size and rate, else YUYV: capture_format.py) and every control the driver
    offers, with its real type, limits, step, default and menu, set through V4L2 and read
    back (settings() reports the driver's values). pixel_format reports the format the
    camera delivers. Until it is open, control settings are kept unchecked (the driver
    alone knows them) and checked when it opens: one the driver refuses then is logged
    and skipped, so a rig moved to another camera still starts.
    """

    capture_clock: CaptureClock = "driver"  # "arrival" when the driver's stamps are off

    def __init__(
        self,
        parsed: SourceKind,
        width: int,
        height: int,
        fps: float,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._device: V4L2Device | None = None
        self._wanted: dict[str, Any] = {}  # control values asked for, set at every open
        self._in_use: str | None = None  # the pixel format the open camera delivers
        super().__init__(parsed, width, height, fps)
        if settings:
            self.apply(settings)

    def open(self) -> None:
        """Ask the driver what it offers, open the stream in the chosen format, set the
        controls asked for, learn whether the driver stamps buffers on the monotonic
        clock, drain."""
        if self._cap is not None:
            return
        self._device = self._open_device()
        try:
            super().open()
        except BaseException:
            self._close_device()
            raise
        cap = self._opened()
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        self._in_use = fourcc_text(code) if code > 0 else None
        self._set_wanted()
        stamped_ns = driver_stamp_ns(cap)
        self.capture_clock = "driver" if plausible_stamp(stamped_ns, time.monotonic_ns()) \
            else "arrival"
        self._start_drain()

    def close(self) -> None:
        super().close()
        self._close_device()

    def _close_device(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None
        self._in_use = None

    def _open_device(self) -> V4L2Device | None:
        """The driver's side of the camera; None without V4L2 (not Linux) or when the node
        does not answer (OpenCV then says why it cannot open it)."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            return V4L2Device.open(self._node())
        except OSError as error:
            log.warning("camera %s: its driver cannot be asked (%s): no controls or modes",
                        self.name, error)
            return None

    def _node(self) -> str:
        """The node to open: a stable link resolved now, to the node it names today."""
        target = self._target
        return f"/dev/video{target}" if isinstance(target, int) else os.path.realpath(target)

    def _reader(self) -> _DeviceReader:
        """V4L2's buffer timestamps (taken by the kernel when the frame was complete)."""
        return _DeviceReader(self._opened(), self.capture_clock == "driver")

    def _read_timeout_s(self) -> float:
        return DEVICE_READ_TIMEOUT_S

    # --- settings ---------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        values = super().settings()
        if self._device is None:
            return {**values, **self._wanted}
        values["pixel_format"] = self._in_use
        values.update({control.name: control.shown(control.value)
                       for control in self._controls()})
        return values

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Controls given while closed are kept to be checked by the driver at open."""
        if self._device is None:
            changes = dict(changes)
            self._wanted.update(pending_controls(changes))
            return super().apply(changes)
        return super().apply({self._driver_name(name): self._as_shown(name, value)
                              for name, value in changes.items()})

    def _default_options(self) -> dict[str, Any]:
        return {"fourcc": AUTO}

    def _specs(self) -> list[PropertySpec]:
        values = self.settings()
        device = self._device
        modes = device.modes() if device is not None else ()
        formats = offered_formats(modes) if device is not None else DECODABLE
        specs = [
            PropertySpec("width", "int", values["width"], 16, 7680, 2, reopen=True,
                         default=DEFAULT_WIDTH, modes=format_modes(modes, values["fourcc"])),
            PropertySpec("height", "int", values["height"], 16, 4320, 2, reopen=True,
                         default=DEFAULT_HEIGHT),
            PropertySpec("fps", "float", values["fps"], 1, 1000, reopen=True,
                         default=DEFAULT_FPS),
            PropertySpec("fourcc", "choice", values["fourcc"], choices=(AUTO, *formats),
                         reopen=True, default=AUTO),
        ]
        if device is not None:
            in_use = values["pixel_format"]
            specs.append(PropertySpec("pixel_format", "choice", in_use,
                                      choices=(in_use,) if in_use else (), read_only=True))
            specs.extend(control_spec(control) for control in self._controls())
        return specs

    def _controls(self) -> list[Control]:
        """The driver's controls a setting can hold, as last read."""
        assert self._device is not None
        return [c for c in self._device.controls().values() if c.settable]

    def _driver_name(self, name: str) -> str:
        """A setting's name on this driver: an old name where only its successor exists."""
        assert self._device is not None
        controls = self._device.controls()
        return OLD_CONTROL_NAMES.get(name, name) if name not in controls else name

    def _as_shown(self, name: str, value: Any) -> Any:
        """A menu also takes an entry's index (an old rig's number: auto_exposure = 1)."""
        assert self._device is not None
        control = self._device.controls().get(self._driver_name(name))
        if control is None or control.kind not in ("menu", "integer_menu"):
            return value
        try:
            return control.shown(control.number(value))
        except (TypeError, ValueError):
            return value  # not an entry: the spec's check names the entries

    def _store(self, values: dict[str, Any]) -> None:
        known = self._device.controls() if self._device is not None else {}
        controls = {k: values.pop(k) for k in list(values) if k in known}
        geometry: dict[str, Any] = {
            k: values.pop(k) for k in ("width", "height", "fps") if k in values
        }
        if self._cap is not None and (geometry or values):
            self._reopen(geometry, values, controls)
            return
        if controls:
            self._set_controls(controls)
        self._requested.update(geometry)
        self._options.update(values)

    def _set_controls(self, controls: dict[str, Any]) -> None:
        """Set controls (switches first: automatic white balance off before its
        temperature); if the driver refuses one, restore those set before and reject."""
        device = self._device
        assert device is not None
        done: list[tuple[str, int | None]] = []
        for name, value in switches_first(controls, device.controls()):
            before = device.controls()[name].value
            try:
                device.set(name, value)
            except OSError as error:
                for undo_name, undo_value in reversed(done):
                    if undo_value is not None:
                        with contextlib.suppress(OSError):
                            device.set(undo_name, undo_value)
                raise SettingRejected(f"camera {self.name} refused {name}={value}: "
                                      f"{error.strerror or error}") from error
            done.append((name, before))
        for old, new in OLD_CONTROL_NAMES.items():
            if new in controls:  # the driver's name now says it
                self._wanted.pop(old, None)
        self._wanted.update(controls)

    def _set_wanted(self) -> None:
        """At open: set the controls asked for that this driver has and takes; note the
        others in the log (the camera runs with the driver's values for them)."""
        device = self._device
        if device is None:
            if self._wanted:
                log.warning("camera %s: cannot set %s without V4L2", self.name,
                            ", ".join(self._wanted))
            return
        specs = {spec.name: spec for spec in self._specs()}
        checked = {}
        for name, value in self._wanted.items():
            driver_name = self._driver_name(name)
            spec = specs.get(driver_name)
            if spec is None or spec.name not in device.controls():
                log.warning("camera %s: its driver has no control %r: not set", self.name,
                            name)
                continue
            try:
                checked[driver_name] = coerce_setting(spec, self._as_shown(name, value))
            except SettingRejected as error:
                log.warning("camera %s: %s: not set", self.name, error)
        for name, value in switches_first(checked, device.controls()):
            try:
                device.set(name, value)
            except OSError as error:
                log.warning("camera %s: the driver refused %s=%s (%s)", self.name, name,
                            value, error.strerror or error)

    def _reopen(
        self, geometry: dict[str, Any], options: dict[str, Any], controls: dict[str, Any]
    ) -> None:
        """Width, height, fps and pixel format only take effect on a fresh open."""
        before = (dict(self._requested), dict(self._options), dict(self._wanted))
        self._requested.update(geometry)
        self._options.update(options)
        self._wanted.update(controls)
        self.close()
        try:
            self.open()
        except SourceError as error:
            self._requested, self._options, self._wanted = before
            self.open()
            raise SettingRejected(f"camera {self.name} cannot use {geometry | options}: "
                                  f"{error}") from error

    def _open_capture(self) -> cv2.VideoCapture:
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        target = self._node() if api == cv2.CAP_V4L2 else self._target
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            raise SourceError(f"cannot open camera {self.name}: device not found or busy")
        fourcc = self._capture_format()
        if fourcc is not None:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc.ljust(4)))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._requested["width"])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._requested["height"])
        cap.set(cv2.CAP_PROP_FPS, self._requested["fps"])
        if not cap.grab():  # some nodes open but stream nothing (e.g. UVC metadata nodes)
            cap.release()
            raise SourceError(
                f"cannot open camera {self.name}: it opened but sent no frame (busy, or not "
                "a capture device)"
            )
        return cap

    def _capture_format(self) -> str | None:
        """The format to ask for (capture_format.py); without V4L2, the user's or none."""
        wanted = self._options["fourcc"]
        if self._device is None:
            return None if wanted == AUTO else wanted
        modes = self._device.modes()
        chosen = choose_format(modes, int(self._requested["width"]),
                               int(self._requested["height"]), self._requested["fps"], wanted)
        if wanted not in (AUTO, chosen):
            log.warning("camera %s does not offer %s; using %s", self.name, wanted, chosen)
        return chosen


# Names of the settings of the OpenCV-era table that V4L2 calls otherwise; a rig that still
# has one sets the driver's control where the driver has no control of the old name.
# brightness, contrast, gain and auto_exposure kept their names (auto_exposure's old numbers,
# 1 manual and 3 aperture priority, are its menu's indexes, which a menu still takes).
OLD_CONTROL_NAMES = {"exposure": "exposure_time_absolute"}
DEVICE_OPTIONS = frozenset({"width", "height", "fps", "fourcc", "pixel_format"})
_CONTROL_NAME = re.compile(r"[a-z][a-z0-9_]*")


def pending_controls(changes: dict[str, Any]) -> dict[str, Any]:
    """Take the control settings out of `changes` (anything but the size, rate and
    formats), checked only for shape: the driver checks them once the camera is open."""
    if changes.get("fourcc") == "H264":
        raise SettingRejected("fourcc H264 is not offered: OpenCV's V4L2 reader cannot decode "
                              "a camera's H.264; use auto (MJPG where the camera has it)")
    pending = {}
    for name in [name for name in changes if name not in DEVICE_OPTIONS]:
        value = changes.pop(name)
        if not isinstance(name, str) or not _CONTROL_NAME.fullmatch(name):
            raise SettingRejected(f"unknown setting {name!r}: a camera control's name is "
                                  "lower case, like exposure_time_absolute")
        if not isinstance(value, bool | int | float | str):
            raise SettingRejected(f"{name} must be a number, true/false or a menu entry, "
                                  f"got {value!r}")
        pending[name] = value
    return pending


def switches_first(values: dict[str, Any], controls: dict[str, Control]) -> list[tuple[str, Any]]:
    """Controls in the order to set them: on/off and menu controls (automatic modes) before
    the values they make active, then in the driver's order."""
    order = list(controls)
    return sorted(values.items(), key=lambda item: (
        controls[item[0]].kind not in ("bool", "menu", "integer_menu"), order.index(item[0])))


def control_spec(control: Control) -> PropertySpec:
    """A driver control as a property: its kind, limits, step, default and menu entries."""
    common: dict[str, Any] = {"read_only": control.read_only, "inactive": control.inactive,
                              "default": control.shown(control.default)}
    value = control.shown(control.value)
    if control.kind == "bool":
        return PropertySpec(control.name, "bool", value, **common)
    if control.kind in ("menu", "integer_menu"):
        return PropertySpec(control.name, "choice", value,
                            choices=tuple(control.menu.values()), **common)
    return PropertySpec(control.name, "int", value, control.minimum, control.maximum,
                        control.step or 1, **common)


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
