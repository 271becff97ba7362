"""A Logitech HD Pro Webcam C920's V4L2 driver answers (uvcvideo, Linux 6.x), recorded as
plain data, and a stand-in driver that gives them: what the V4L2 parsing, the capture
format choice and the settings dialog are tested on without a camera.

The formats, sizes, intervals and controls are those `v4l2-ctl --list-formats-ext -L`
shows for the camera (firmware with H.264, which no OpenCV reader decodes).
"""

from __future__ import annotations

import errno

from engine.sources.v4l2_device import (
    CAP_DEVICE_CAPS,
    CAP_VIDEO_CAPTURE,
    ControlAnswer,
    ControlFlag,
    ControlType,
    FormatAnswer,
    IntervalAnswer,
    SizeAnswer,
)

CAP_STREAMING = 0x04000000
CAP_META_CAPTURE = 0x00800000

FORMATS = [
    FormatAnswer("YUYV", "YUYV 4:2:2"),
    FormatAnswer("H264", "H.264", flags=0x1),  # V4L2_FMT_FLAG_COMPRESSED
    FormatAnswer("MJPG", "Motion-JPEG", flags=0x1),
]
# Seconds per frame as (numerator, denominator), as the driver lists them.
ALL_RATES = [(1, 30), (1, 24), (1, 20), (1, 15), (1, 10), (2, 15), (1, 5)]
YUYV_SIZES = {
    (640, 480): ALL_RATES, (160, 90): ALL_RATES, (160, 120): ALL_RATES,
    (176, 144): ALL_RATES, (320, 180): ALL_RATES, (320, 240): ALL_RATES,
    (352, 288): ALL_RATES, (432, 240): ALL_RATES, (640, 360): ALL_RATES,
    (800, 448): ALL_RATES, (800, 600): ALL_RATES[1:], (864, 480): ALL_RATES[1:],
    (960, 720): ALL_RATES[3:], (1024, 576): ALL_RATES[3:], (1280, 720): ALL_RATES[4:],
    (1600, 896): ALL_RATES[5:], (1920, 1080): ALL_RATES[6:], (2304, 1296): [(1, 2)],
    (2304, 1536): [(1, 2)],
}
MJPG_SIZES = {size: ALL_RATES for size in (
    (640, 480), (160, 90), (160, 120), (176, 144), (320, 180), (320, 240), (352, 288),
    (432, 240), (640, 360), (800, 448), (800, 600), (864, 480), (960, 720), (1024, 576),
    (1280, 720), (1600, 896), (1920, 1080))}
SIZES = {"YUYV": YUYV_SIZES, "MJPG": MJPG_SIZES, "H264": MJPG_SIZES}

INT, BOOL, MENU, CLASS = (ControlType.INTEGER, ControlType.BOOLEAN, ControlType.MENU,
                          ControlType.CTRL_CLASS)
INACTIVE = ControlFlag.INACTIVE
SLIDER = ControlFlag.SLIDER
CONTROLS = [
    ControlAnswer(0x00980001, CLASS, "User Controls", flags=0x44),
    ControlAnswer(0x00980900, INT, "Brightness", 0, 255, 1, 128, SLIDER),
    ControlAnswer(0x00980901, INT, "Contrast", 0, 255, 1, 128, SLIDER),
    ControlAnswer(0x00980902, INT, "Saturation", 0, 255, 1, 128, SLIDER),
    ControlAnswer(0x0098090C, BOOL, "White Balance, Automatic", 0, 1, 1, 1),
    ControlAnswer(0x00980913, INT, "Gain", 0, 255, 1, 0, SLIDER),
    ControlAnswer(0x00980918, MENU, "Power Line Frequency", 0, 2, 1, 2),
    ControlAnswer(0x0098091A, INT, "White Balance Temperature", 2000, 6500, 1, 4000,
                  SLIDER | INACTIVE),
    ControlAnswer(0x0098091B, INT, "Sharpness", 0, 255, 1, 128, SLIDER),
    ControlAnswer(0x0098091C, INT, "Backlight Compensation", 0, 1, 1, 0),
    ControlAnswer(0x009A0001, CLASS, "Camera Controls", flags=0x44),
    ControlAnswer(0x009A0901, MENU, "Auto Exposure", 0, 3, 1, 3),
    ControlAnswer(0x009A0902, INT, "Exposure Time, Absolute", 3, 2047, 1, 250, INACTIVE),
    ControlAnswer(0x009A0903, BOOL, "Exposure, Dynamic Framerate", 0, 1, 1, 0),
    ControlAnswer(0x009A0908, INT, "Pan, Absolute", -36000, 36000, 3600, 0),
    ControlAnswer(0x009A0909, INT, "Tilt, Absolute", -36000, 36000, 3600, 0),
    ControlAnswer(0x009A090A, INT, "Focus, Absolute", 0, 250, 5, 0, INACTIVE),
    ControlAnswer(0x009A090C, BOOL, "Focus, Automatic Continuous", 0, 1, 1, 1),
    ControlAnswer(0x009A090D, INT, "Zoom, Absolute", 100, 500, 1, 100),
]
MENUS: dict[int, dict[int, str | int]] = {
    0x00980918: {0: "Disabled", 1: "50 Hz", 2: "60 Hz"},
    0x009A0901: {1: "Manual Mode", 3: "Aperture Priority Mode"},  # 0 and 2: EINVAL
}
VALUES = {answer.id: answer.default for answer in CONTROLS if answer.type != CLASS}
VALUES[0x009A0903] = 1  # the camera came up with a dynamic frame rate
# Which automatic control makes which control inactive while it is on, as uvcvideo does.
AUTOMATIC = {0x0098091A: (0x0098090C, 1), 0x009A0902: (0x009A0901, 3),
             0x009A090A: (0x009A090C, 1)}


class C920Driver:
    """Gives the recorded answers; controls keep set values and refuse what uvcvideo
    refuses (out of range: ERANGE; an inactive control: EACCES)."""

    def __init__(self, metadata_node: bool = False) -> None:
        self.values = dict(VALUES)
        self.metadata_node = metadata_node
        self.sets: list[tuple[int, int]] = []
        self.closed = False

    def capabilities(self) -> int:
        node = CAP_META_CAPTURE if self.metadata_node else CAP_VIDEO_CAPTURE
        return CAP_DEVICE_CAPS | node | CAP_STREAMING

    def formats(self) -> list[FormatAnswer]:
        return [] if self.metadata_node else list(FORMATS)

    def frame_sizes(self, fourcc: str) -> list[SizeAnswer]:
        return [SizeAnswer.discrete(w, h) for w, h in SIZES[fourcc]]

    def frame_intervals(self, fourcc: str, width: int, height: int) -> list[IntervalAnswer]:
        return [IntervalAnswer.discrete(n, d) for n, d in SIZES[fourcc][(width, height)]]

    def controls(self) -> list[ControlAnswer]:
        if self.metadata_node:
            return []
        answers = []
        for answer in CONTROLS:
            flags = answer.flags & ~INACTIVE
            if answer.id in AUTOMATIC:
                switch, on = AUTOMATIC[answer.id]
                flags |= INACTIVE if self.values[switch] == on else 0
            answers.append(ControlAnswer(answer.id, answer.type, answer.name, answer.minimum,
                                         answer.maximum, answer.step, answer.default, flags))
        return answers

    def menu(self, control: ControlAnswer) -> dict[int, str | int]:
        return dict(MENUS[control.id])

    def get(self, control_id: int) -> int:
        return self.values[control_id]

    def set(self, control_id: int, value: int) -> None:
        answer = next(a for a in self.controls() if a.id == control_id)
        if answer.flags & INACTIVE:
            raise OSError(errno.EACCES, "Permission denied")
        if not answer.minimum <= value <= answer.maximum:
            raise OSError(errno.ERANGE, "Numerical result out of range")
        self.sets.append((control_id, value))
        self.values[control_id] = value

    def close(self) -> None:
        self.closed = True
