"""What a V4L2 camera offers, asked of its driver: its formats with their sizes and rates,
and every control with its real type, limits, step, default, menu and flags; a control is
set and read back.

The driver is asked through a `Driver` (the ioctls, by linuxpy: `Ioctls`) for plain
answers. Turning them into modes and controls (`read_modes`, `read_controls`) touches no
device, so it is tested on the recorded answers of a real camera. Nothing here streams:
a camera another process is reading can still be asked (V4L2 allows several opens; only
streaming is exclusive).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from fractions import Fraction
from typing import Any, Protocol

# VIDIOC_QUERYCAP: the node captures video (a UVC camera's second node carries metadata).
CAP_VIDEO_CAPTURE = 0x00000001
CAP_DEVICE_CAPS = 0x80000000  # device_caps describes this node (else capabilities does)
# v4l2_frmsizetypes / v4l2_frmivaltypes
DISCRETE, CONTINUOUS, STEPWISE = 1, 2, 3

# Sizes and rates offered from a stepwise or continuous range (a list of every size the
# range allows would be useless to pick from).
COMMON_SIZES = ((3840, 2160), (2560, 1440), (1920, 1080), (1600, 1200), (1280, 960),
                (1280, 720), (1024, 768), (800, 600), (640, 480), (320, 240))
COMMON_RATES = (120, 100, 90, 60, 50, 30, 25, 24, 20, 15, 10, 5)

# The names of the standard controls, as v4l2-ctl spells them on a current kernel. The
# driver's own texts changed across kernels ("Exposure (Absolute)" became "Exposure Time,
# Absolute"), so a rig names a standard control by its id's name and keeps working.
STANDARD_NAMES = {
    0x00980900: "brightness",
    0x00980901: "contrast",
    0x00980902: "saturation",
    0x00980903: "hue",
    0x0098090C: "white_balance_automatic",
    0x00980910: "gamma",
    0x00980913: "gain",
    0x00980918: "power_line_frequency",
    0x0098091A: "white_balance_temperature",
    0x0098091B: "sharpness",
    0x0098091C: "backlight_compensation",
    0x009A0901: "auto_exposure",
    0x009A0902: "exposure_time_absolute",
    0x009A0903: "exposure_dynamic_framerate",
    0x009A0908: "pan_absolute",
    0x009A0909: "tilt_absolute",
    0x009A090A: "focus_absolute",
    0x009A090C: "focus_automatic_continuous",
    0x009A090D: "zoom_absolute",
}


class ControlType(IntEnum):
    """enum v4l2_ctrl_type (the ones a camera has; compound types are not listed)."""

    INTEGER = 1
    BOOLEAN = 2
    MENU = 3
    BUTTON = 4
    INTEGER64 = 5
    CTRL_CLASS = 6
    STRING = 7
    BITMASK = 8
    INTEGER_MENU = 9


class ControlFlag(IntFlag):
    """V4L2_CTRL_FLAG_*."""

    DISABLED = 0x0001
    GRABBED = 0x0002
    READ_ONLY = 0x0004
    UPDATE = 0x0008
    INACTIVE = 0x0010
    SLIDER = 0x0020
    WRITE_ONLY = 0x0040
    VOLATILE = 0x0080


# Control types whose value is one 32-bit number, read and set with VIDIOC_G/S_CTRL.
VALUED = {ControlType.INTEGER, ControlType.BOOLEAN, ControlType.MENU, ControlType.INTEGER_MENU}
KINDS = {ControlType.INTEGER: "int", ControlType.BOOLEAN: "bool", ControlType.MENU: "menu",
         ControlType.INTEGER_MENU: "integer_menu", ControlType.BUTTON: "button",
         ControlType.INTEGER64: "int64", ControlType.STRING: "string",
         ControlType.BITMASK: "bitmask"}


# --- the driver's answers, as plain data ---------------------------------------------------


@dataclass(frozen=True)
class FormatAnswer:
    """One VIDIOC_ENUM_FMT answer."""

    fourcc: str
    description: str
    flags: int = 0


@dataclass(frozen=True)
class SizeAnswer:
    """One VIDIOC_ENUM_FRAMESIZES answer: a discrete size (min = max), or a range."""

    type: int
    min_width: int
    min_height: int
    max_width: int = 0
    max_height: int = 0
    step_width: int = 1
    step_height: int = 1

    @classmethod
    def discrete(cls, width: int, height: int) -> SizeAnswer:
        return cls(DISCRETE, width, height, width, height)


@dataclass(frozen=True)
class IntervalAnswer:
    """One VIDIOC_ENUM_FRAMEINTERVALS answer in seconds per frame: discrete (min = max),
    or a range."""

    type: int
    min: Fraction
    max: Fraction
    step: Fraction = Fraction(0)

    @classmethod
    def discrete(cls, numerator: int, denominator: int) -> IntervalAnswer:
        return cls(DISCRETE, Fraction(numerator, denominator), Fraction(numerator, denominator))


@dataclass(frozen=True)
class ControlAnswer:
    """One VIDIOC_QUERY_EXT_CTRL answer."""

    id: int
    type: int
    name: str
    minimum: int = 0
    maximum: int = 0
    step: int = 0
    default: int = 0
    flags: int = 0


class Driver(Protocol):
    """The questions asked of a V4L2 node (the ioctls), answered as plain data."""

    def capabilities(self) -> int:
        """VIDIOC_QUERYCAP: the node's capabilities."""

    def formats(self) -> list[FormatAnswer]:
        """VIDIOC_ENUM_FMT over the capture formats."""

    def frame_sizes(self, fourcc: str) -> list[SizeAnswer]:
        """VIDIOC_ENUM_FRAMESIZES of a format."""

    def frame_intervals(self, fourcc: str, width: int, height: int) -> list[IntervalAnswer]:
        """VIDIOC_ENUM_FRAMEINTERVALS of a format at a size."""

    def controls(self) -> list[ControlAnswer]:
        """VIDIOC_QUERY_EXT_CTRL over every control (NEXT_CTRL), class headers included."""

    def menu(self, control: ControlAnswer) -> dict[int, str | int]:
        """VIDIOC_QUERYMENU from minimum to maximum: the indexes that answer, with their
        name (a menu) or value (an integer menu)."""

    def get(self, control_id: int) -> int:
        """VIDIOC_G_CTRL."""

    def set(self, control_id: int, value: int) -> None:
        """VIDIOC_S_CTRL; raises OSError when the driver refuses."""

    def close(self) -> None:
        """Release the node."""


# --- parsed: modes and controls ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class Mode:
    """A pixel format at a frame size and rate the camera offers."""

    fourcc: str
    width: int
    height: int
    fps: float


@dataclass(frozen=True)
class Control:
    """One driver control. `value` and `default` are the driver's numbers (a menu's
    index); `shown` turns them into what a person sets (true/false, a menu entry's name)."""

    id: int
    name: str  # the key a rig uses: STANDARD_NAMES, else the driver's text in snake_case
    label: str  # the driver's own text
    kind: str  # int, bool, menu, integer_menu, button, int64, string, bitmask
    minimum: int
    maximum: int
    step: int
    default: int
    flags: int
    value: int | None = None  # None: the driver gave none (a button, write-only, failed)
    menu: dict[int, str] = field(default_factory=dict)  # index -> entry (an integer's text)

    @property
    def inactive(self) -> bool:
        """The driver ignores the value for now (its automatic mode decides, say)."""
        return bool(self.flags & ControlFlag.INACTIVE)

    @property
    def read_only(self) -> bool:
        return bool(self.flags & (ControlFlag.READ_ONLY | ControlFlag.GRABBED))

    @property
    def disabled(self) -> bool:
        return bool(self.flags & ControlFlag.DISABLED)

    @property
    def settable(self) -> bool:
        """Whether it holds a value a rig can keep (a button, a string, ... cannot)."""
        return self.kind in ("int", "bool", "menu", "integer_menu") and not self.disabled

    def shown(self, number: int | None) -> Any:
        """A driver number as a person sets it: bool, a menu entry's name, or the int."""
        if number is None:
            return None
        if self.kind == "bool":
            return bool(number)
        if self.kind in ("menu", "integer_menu"):
            return self.menu.get(number, str(number))
        return number

    def number(self, value: Any) -> int:
        """What the driver is given for a value a person set (the inverse of `shown`);
        a menu also takes an entry's index (an old rig's number)."""
        if self.kind == "bool":
            return int(bool(value))
        if self.kind in ("menu", "integer_menu"):
            for index, entry in self.menu.items():
                if entry == str(value):
                    return index
            if isinstance(value, int) and not isinstance(value, bool) and value in self.menu:
                return value
            raise ValueError(f"{self.name} has no entry {value!r}; "
                             f"entries: {', '.join(self.menu.values())}")
        return int(value)


def control_name(control_id: int, text: str) -> str:
    """The key of a control: its standard name, else the driver's text as v4l2-ctl
    spells it ("Focus, Automatic Continuous" -> "focus_automatic_continuous")."""
    if control_id in STANDARD_NAMES:
        return STANDARD_NAMES[control_id]
    words, word = [], ""
    for char in text:
        if char.isascii() and char.isalnum():
            word += char.lower()
        elif word:
            words.append(word)
            word = ""
    return "_".join([*words, word] if word else words) or f"control_{control_id:08x}"


def read_modes(driver: Driver) -> tuple[Mode, ...]:
    """Every (format, size, rate) the driver lists, largest size and rate first."""
    modes = set()
    for answer in driver.formats():
        for width, height in _sizes(driver.frame_sizes(answer.fourcc)):
            for fps in _rates(driver.frame_intervals(answer.fourcc, width, height)):
                modes.add(Mode(answer.fourcc, width, height, fps))
    return tuple(sorted(modes, key=lambda m: (m.fourcc, -m.width * m.height, -m.width, -m.fps)))


def _sizes(answers: Iterable[SizeAnswer]) -> list[tuple[int, int]]:
    sizes = []
    for answer in answers:
        if answer.type == DISCRETE:
            sizes.append((answer.min_width, answer.min_height))
            continue
        sizes.extend((w, h) for w, h in COMMON_SIZES
                     if _in_range(w, answer.min_width, answer.max_width, answer.step_width)
                     and _in_range(h, answer.min_height, answer.max_height, answer.step_height))
        sizes.append((answer.max_width, answer.max_height))
    return sizes


def _rates(answers: Iterable[IntervalAnswer]) -> list[float]:
    rates = []
    for answer in answers:
        if answer.min <= 0:
            continue
        rates.append(round(float(1 / answer.min), 3))
        if answer.type != DISCRETE:
            slowest = 1 / answer.max if answer.max > 0 else Fraction(0)
            rates.extend(rate for rate in COMMON_RATES if slowest <= rate < 1 / answer.min)
    return rates


def _in_range(value: int, low: int, high: int, step: int) -> bool:
    return low <= value <= high and (value - low) % max(1, step) == 0


def read_controls(driver: Driver) -> list[Control]:
    """Every control the driver offers, in its order, with menus and current values
    (class headers, which only title a group, are left out)."""
    controls = []
    for answer in driver.controls():
        if answer.type == ControlType.CTRL_CLASS:
            continue
        try:
            kind = KINDS[ControlType(answer.type)]
        except ValueError:  # a compound control (codec parameters): nothing to set
            continue
        menu = {}
        if answer.type in (ControlType.MENU, ControlType.INTEGER_MENU):
            menu = {index: str(entry) for index, entry in driver.menu(answer).items()}
        controls.append(Control(
            answer.id, control_name(answer.id, answer.name), answer.name, kind,
            answer.minimum, answer.maximum, answer.step, answer.default, answer.flags,
            _current(driver, answer), menu))
    return controls


def _current(driver: Driver, answer: ControlAnswer) -> int | None:
    if answer.type not in VALUED or answer.flags & (ControlFlag.DISABLED
                                                    | ControlFlag.WRITE_ONLY):
        return None
    try:
        return driver.get(answer.id)
    except OSError:  # a flaky USB transfer, or a control the device does not answer
        return None


def capture_capable(driver: Driver) -> bool:
    """The node captures video (not a UVC metadata node)."""
    return bool(driver.capabilities() & CAP_VIDEO_CAPTURE)


# --- a device: its driver, asked once, and its controls kept up to date ------------------


class V4L2Device:
    """A V4L2 node's modes and controls; controls are set by name and read back."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._modes: tuple[Mode, ...] | None = None
        self._controls = {control.name: control for control in read_controls(driver)}

    @classmethod
    def open(cls, path: str, opener: Callable[[str], Driver] | None = None) -> V4L2Device:
        """Open the node (a /dev/v4l/by-id/... link works too) through `opener` (the
        ioctls unless a test gives recorded answers); OSError if it will not."""
        driver = (opener or Ioctls)(path)
        try:
            return cls(driver)
        except BaseException:
            driver.close()
            raise

    @property
    def capture_capable(self) -> bool:
        return capture_capable(self._driver)

    def formats(self) -> list[FormatAnswer]:
        return self._driver.formats()

    def modes(self) -> tuple[Mode, ...]:
        if self._modes is None:
            self._modes = read_modes(self._driver)
        return self._modes

    def controls(self) -> dict[str, Control]:
        """By name, in the driver's order, as last read."""
        return dict(self._controls)

    def set(self, name: str, value: Any) -> Control:
        """Set a control (as a person gives it: a menu's entry name, true/false, a number)
        and return it read back. Every control is read again: setting one can change
        another's value or flags (automatic white balance off makes the temperature
        active). Raises KeyError, ValueError, or OSError when the driver refuses."""
        control = self._controls[name]
        self._driver.set(control.id, control.number(value))
        self.refresh()
        return self._controls[name]

    def refresh(self) -> None:
        self._controls = {control.name: control for control in read_controls(self._driver)}

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> V4L2Device:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Ioctls:
    """The live driver: one file descriptor on the node, the ioctls through linuxpy."""

    def __init__(self, path: str) -> None:
        from linuxpy.ioctl import ioctl
        from linuxpy.video import raw
        from linuxpy.video.device import iter_read

        self._ioctl, self._raw, self._iter_read = ioctl, raw, iter_read
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def capabilities(self) -> int:
        caps = self._raw.v4l2_capability()
        self._ioctl(self._fd, self._raw.IOC.QUERYCAP, caps)
        return int(caps.device_caps if caps.capabilities & CAP_DEVICE_CAPS
                   else caps.capabilities)

    def formats(self) -> list[FormatAnswer]:
        query = self._raw.v4l2_fmtdesc()
        query.type = self._raw.BufferType.VIDEO_CAPTURE
        return [FormatAnswer(fourcc_text(answer.pixelformat),
                             answer.description.decode(errors="replace"), answer.flags)
                for answer in self._iter_read(self._fd, self._raw.IOC.ENUM_FMT, query)]

    def frame_sizes(self, fourcc: str) -> list[SizeAnswer]:
        query = self._raw.v4l2_frmsizeenum()
        query.pixel_format = fourcc_code(fourcc)
        sizes = []
        for answer in self._iter_read(self._fd, self._raw.IOC.ENUM_FRAMESIZES, query):
            if answer.type == DISCRETE:
                sizes.append(SizeAnswer.discrete(answer.discrete.width, answer.discrete.height))
            else:
                step = answer.stepwise
                sizes.append(SizeAnswer(answer.type, step.min_width, step.min_height,
                                        step.max_width, step.max_height, step.step_width,
                                        step.step_height))
        return sizes

    def frame_intervals(self, fourcc: str, width: int, height: int) -> list[IntervalAnswer]:
        query = self._raw.v4l2_frmivalenum()
        query.pixel_format, query.width, query.height = fourcc_code(fourcc), width, height
        intervals = []
        for answer in self._iter_read(self._fd, self._raw.IOC.ENUM_FRAMEINTERVALS, query):
            if answer.type == DISCRETE:
                intervals.append(IntervalAnswer.discrete(answer.discrete.numerator,
                                                         answer.discrete.denominator))
            else:
                low, high, step = (answer.stepwise.min, answer.stepwise.max,
                                   answer.stepwise.step)
                intervals.append(IntervalAnswer(answer.type, _fraction(low), _fraction(high),
                                                _fraction(step)))
        return intervals

    def controls(self) -> list[ControlAnswer]:
        query = self._raw.v4l2_query_ext_ctrl()
        following = self._raw.ControlFlag.NEXT_CTRL
        query.id = following
        answers: list[ControlAnswer] = []
        while True:
            try:
                self._ioctl(self._fd, self._raw.IOC.QUERY_EXT_CTRL, query)
            except OSError as error:
                if error.errno in (errno.EINVAL, errno.ENOTTY):  # past the last one, or none
                    return answers
                raise
            answers.append(ControlAnswer(query.id, query.type, query.name.decode(
                errors="replace"), query.minimum, query.maximum, query.step,
                query.default_value, query.flags))
            query.id |= following

    def menu(self, control: ControlAnswer) -> dict[int, str | int]:
        query = self._raw.v4l2_querymenu()
        query.id = control.id
        entries: dict[int, str | int] = {}
        for answer in self._iter_read(self._fd, self._raw.IOC.QUERYMENU, query,
                                      start=control.minimum, stop=control.maximum + 1,
                                      ignore_einval=True):  # a menu may skip indexes
            entries[answer.index] = (answer.value if control.type == ControlType.INTEGER_MENU
                                     else answer.name.decode(errors="replace"))
        return entries

    def get(self, control_id: int) -> int:
        query = self._raw.v4l2_control(control_id)
        self._ioctl(self._fd, self._raw.IOC.G_CTRL, query)
        return int(query.value)

    def set(self, control_id: int, value: int) -> None:
        self._ioctl(self._fd, self._raw.IOC.S_CTRL, self._raw.v4l2_control(control_id, value))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fraction(fract: Any) -> Fraction:
    """A struct v4l2_fract (0/0 from some drivers: no limit)."""
    return Fraction(fract.numerator, fract.denominator) if fract.denominator else Fraction(0)


def fourcc_text(code: int) -> str:
    """V4L2's 32-bit pixel format code as its four letters ("MJPG", "YUYV")."""
    return code.to_bytes(4, "little").decode("ascii", errors="replace").rstrip()


def fourcc_code(text: str) -> int:
    return int.from_bytes(text.encode("ascii").ljust(4)[:4], "little")
