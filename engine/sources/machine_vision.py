"""What every machine-vision camera source shares, whatever SDK speaks to the camera
(pylon_source.py: Basler's pylon; aravis_source.py: any GenICam camera through Aravis).

The trigger setting decides who starts an exposure:
- "software" (the default): the camera exposes when its process fires the camera's
  software trigger at the frame set's moment. Every camera of the group fires at the same
  moment on the one set clock, so their exposures start together, and each set is exactly
  one exposure per camera: the device's frame counter advances by one per set.
- "hardware": the camera exposes on an edge of an input line (`trigger_line`,
  `trigger_edge`): a trigger box, or one camera's output wired to the others' inputs.
  A set waits for the next triggered frame (at most `read_timeout_ms`).
- "free": the camera runs on its own clock at the rig's rate; a set takes the frame
  captured nearest at or before its moment, like any free-running camera.

Each frame carries the device's frame counter and, where the camera keeps one, its clock
(`device_frame`, `device_ns`). An exposure the camera failed to deliver (an incomplete
buffer) counts as dropped, and its set repeats the previous frame.

Settings named like GenICam features (ExposureTime, Gain...: CamelCase) are the camera's
own: checked against its feature tree when it opens, set on it, and read back.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from engine.sources import SourceKind, validate_changes
from engine.sources.base import CaptureClock, Latch, PropertySpec, SettingRejected, SourceError
from engine.sources.configured import ConfiguredSource
from engine.sources.drain import FrameDrain
from engine.sources.drained import latch_deadline_ns
from engine.specs import TRIGGERS

LINES = ("Line1", "Line2", "Line3", "Line4")
EDGES = ("RisingEdge", "FallingEdge")
# Pixel formats a camera may deliver, most direct first, with the conversion to BGR
# (Bayer is debayered once, in the camera process); None: as delivered. Mono stays mono:
# one channel in the ring and a gray video (MONO).
FORMATS: tuple[tuple[str, int | None], ...] = (
    ("BGR8", None), ("BGR8Packed", None), ("RGB8", cv2.COLOR_RGB2BGR),
    ("RGB8Packed", cv2.COLOR_RGB2BGR), ("BayerRG8", cv2.COLOR_BayerRG2BGR),
    ("BayerBG8", cv2.COLOR_BayerBG2BGR), ("BayerGR8", cv2.COLOR_BayerGR2BGR),
    ("BayerGB8", cv2.COLOR_BayerGB2BGR), ("Mono8", None),
)
MONO = "Mono8"
PIXEL_FORMATS = ("auto", *(name for name, _ in FORMATS))
# The camera's own features offered as settings: those of these GenICam categories that a
# user (Beginner) or an expert may see, but not those the source sets itself.
FEATURE_CATEGORIES = ("AnalogControl", "AcquisitionControl", "ImageFormatControl")
MANAGED_FEATURES = frozenset({
    "Width", "Height", "PixelFormat", "WidthMax", "HeightMax", "TriggerSelector",
    "TriggerMode", "TriggerSource", "TriggerActivation", "TriggerSoftware", "AcquisitionMode",
    "AcquisitionStart", "AcquisitionStop", "AcquisitionFrameRateEnable",
    "AcquisitionFrameRate", "AcquisitionFrameRateAbs", "TestImageSelector", "ImageFileMode",
    # They change the picture's size, which is the rig's (width, height).
    "BinningHorizontal", "BinningVertical", "DecimationHorizontal", "DecimationVertical",
})

# A grabbed picture as a source keeps it: (pixels or None for a failed exposure, the
# device's frame counter, the device's clock in ns or -1).
Picture = tuple[np.ndarray | None, int, int]


def choose_format(offered: list[str] | tuple[str, ...], camera: str,
                  wanted: str = "auto") -> tuple[str, int | None]:
    """The pixel format to set (`wanted`, or with "auto" the first of FORMATS the camera
    offers), with its conversion to BGR."""
    chosen = next(((name, code) for name, code in FORMATS
                   if name in offered and wanted in ("auto", name)), None)
    if chosen is None and wanted != "auto":
        raise SourceError(f"{camera} does not offer pixel_format {wanted} (it offers "
                          f"{', '.join(offered)})")
    if chosen is None:
        raise SourceError(f"{camera} offers none of the pixel formats this recorder reads "
                          f"({', '.join(offered)})")
    return chosen


def format_actual(name: str) -> dict[str, Any]:
    """What an open camera reports of the pixel format it delivers: the camera's name for
    it, and the channels its pictures have in the ring (1: recorded as gray video)."""
    return {"camera_pixel_format": name, "channels": 1 if name == MONO else 3}


def is_feature(key: str) -> bool:
    """GenICam feature names are CamelCase; a source's own settings are snake_case."""
    return key[:1].isupper()


class _GrabReader:
    """A FrameDrain reader of a free-running camera: one grab result per read."""

    def __init__(self, source: MachineVisionCamera) -> None:
        self._source = source

    def read(self, spare: Any) -> tuple[Any, int] | None:
        return self._source.grab_next()

    def develop(self, picture: Any, out: np.ndarray) -> None:
        self._source.develop(picture, out)


class MachineVisionCamera(ConfiguredSource):
    """The frame path and settings of a triggered camera; a subclass speaks to its SDK
    (the methods that raise NotImplementedError)."""

    def __init__(self, parsed: SourceKind, width: int, height: int, fps: float,
                 settings: dict[str, Any] | None = None) -> None:
        settings = dict(settings or {})
        self._features = {key: settings.pop(key) for key in list(settings) if is_feature(key)}
        self._conversion: int | None = None
        self._latched: Picture | None = None  # a triggered camera's frame a set took last
        self._drain: FrameDrain | None = None
        self._captured_ns = 0
        self._dropped = 0
        self.device_frame = -1  # of the frame retrieved last
        self.device_ns = -1
        super().__init__(parsed, width, height, fps, settings)

    # --- what a subclass provides ------------------------------------------------------

    def _open_device(self) -> None:
        """Open the camera; set size, pixel format (choose_format: set self._conversion),
        trigger and rate as the settings say; fill self._actual; start acquiring."""
        raise NotImplementedError

    def _close_device(self) -> None:
        """Stop acquiring and close the camera; quiet when it is gone already."""
        raise NotImplementedError

    def _fire_trigger(self, moment_ns: int) -> int:
        """Fire the software trigger at moment_ns, once the camera is ready for one;
        return when it was fired (monotonic ns)."""
        raise NotImplementedError

    def _grab_result(self) -> tuple[Picture, int] | None:
        """The camera's next frame and its arrival (monotonic ns); pixels None for a
        failed exposure; None when the camera is gone or silent for the read timeout."""
        raise NotImplementedError

    def _feature_specs(self) -> list[PropertySpec]:
        """The open camera's features as settings (empty while closed)."""
        raise NotImplementedError

    def _write_feature(self, name: str, value: Any) -> Any:
        """Set one feature on the open camera; return the value it reads back."""
        raise NotImplementedError

    # --- settings --------------------------------------------------------------------

    def _default_options(self) -> dict[str, Any]:
        return {"trigger": "software", "trigger_line": "Line1", "trigger_edge": "RisingEdge",
                "read_timeout_ms": 5000, "pixel_format": "auto"}

    def _option_specs(self) -> list[PropertySpec]:
        options = self._options
        return [
            PropertySpec("trigger", "choice", options["trigger"], choices=TRIGGERS, reopen=True),
            PropertySpec("trigger_line", "choice", options["trigger_line"], choices=LINES,
                         reopen=True),
            PropertySpec("trigger_edge", "choice", options["trigger_edge"], choices=EDGES,
                         reopen=True),
            PropertySpec("read_timeout_ms", "int", options["read_timeout_ms"], 100, 60_000),
            PropertySpec("pixel_format", "choice", options["pixel_format"],
                         choices=PIXEL_FORMATS, reopen=True),
        ]

    def properties(self) -> list[PropertySpec]:
        """The source's settings, then the camera's own features."""
        return self._specs() + self._feature_specs()

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The camera's features are set on it and read back; the rest as any source's."""
        features = {key: value for key, value in changes.items() if is_feature(key)}
        super().apply({key: value for key, value in changes.items() if key not in features})
        if features:
            if self._actual:
                self._set_features(features)
            else:
                self._features.update(features)  # set when the camera opens
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return super().settings() | self._features

    def _set_features(self, features: dict[str, Any]) -> None:
        """Check against the camera's own limits, set, and keep what it reads back."""
        for key, value in validate_changes(self._feature_specs(), features).items():
            try:
                self._features[key] = self._write_feature(key, value)
            except Exception as exc:  # the camera refused the value
                raise SettingRejected(f"{self.name}: {key} = {value!r}: {exc}") from None

    @property
    def free_running(self) -> bool:
        return self._options["trigger"] == "free"

    @property
    def capture_clock(self) -> CaptureClock:
        """A software-triggered exposure starts when it is fired; a free-running frame is
        known by its arrival; a hardware-triggered one by when it was grabbed."""
        clocks: dict[str, CaptureClock] = {"software": "trigger", "free": "arrival"}
        return clocks.get(self._options["trigger"], "after_grab")

    # --- open and close --------------------------------------------------------------

    def open(self) -> None:
        try:
            self._open_device()
            self._set_features(dict(self._features))
        except Exception as exc:  # ours, or an SDK's own exception classes
            self.close()
            raise SourceError(f"cannot open {self.kind_label} {self.name}: {exc}") from None
        if self.free_running:
            self._drain = FrameDrain(_GrabReader(self), self.name)

    def close(self) -> None:
        if self._drain is not None:
            self._drain.stop(self._read_timeout_s() + 1.0)
            self._drain = None
        self._close_device()
        super().close()

    # --- frames ----------------------------------------------------------------------

    def grab(self) -> bool:
        return self.latch_at(time.monotonic_ns()) != Latch.FAILED

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        if self._drain is None:
            return True  # a triggered camera times its trigger in latch_at
        return self._drain.wait_for_set(moment_ns, limit_ns, self._latch_deadline_ns(moment_ns))

    def latch_at(self, moment_ns: int) -> Latch:
        """Triggered: fire the software trigger at the moment (or wait for the line's),
        then take that exposure. Free: the frame captured nearest at or before it."""
        drain = self._drain
        if drain is not None:
            if drain.latch_for_set(moment_ns, self._latch_deadline_ns(moment_ns)):
                return Latch.NEW
            return Latch.FAILED if drain.failed or not drain.latched else Latch.REPEAT
        if not self._actual:
            return Latch.FAILED
        fired_ns = 0
        try:
            if self._options["trigger"] == "software":
                fired_ns = self._fire_trigger(moment_ns)
        except Exception:  # the camera went away
            return Latch.FAILED
        grabbed = self.grab_next()
        if grabbed is None:
            return Latch.FAILED
        picture, arrived_ns = grabbed
        if picture[0] is None:  # the camera failed this exposure: the set repeats
            return Latch.REPEAT if self._latched is not None else Latch.FAILED
        self._latched, self._captured_ns = picture, fired_ns or arrived_ns
        return Latch.NEW

    def grab_next(self) -> tuple[Picture, int] | None:
        """The next frame (see _grab_result), a failed exposure counted as dropped."""
        try:
            grabbed = self._grab_result()
        except Exception:  # the camera went away
            return None
        if grabbed is not None and grabbed[0][0] is None:
            self._dropped += 1
        return grabbed

    def develop(self, picture: Picture, out: np.ndarray) -> None:
        """Write a picture's pixels into out: BGR (Bayer and RGB converted), or mono into a
        one-channel out."""
        pixels = picture[0]
        if pixels is None:
            raise SourceError(f"{self.kind_label} {self.name} delivered an incomplete frame")
        if self._conversion is None:
            np.copyto(out, pixels.reshape(out.shape))  # a view: mono (h, w) as (h, w, 1)
        else:
            cv2.cvtColor(pixels, self._conversion, dst=out)

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        """The latched frame into out; its device counter and clock into device_frame and
        device_ns."""
        picture: Picture | None
        if self._drain is not None:
            self._captured_ns = self._drain.copy_latched(out)
            picture = self._drain.latched_picture()
        else:
            picture = self._latched
            if picture is None:
                raise SourceError(f"{self.kind_label} {self.name} has no frame latched")
            self.develop(picture, out)
        assert picture is not None
        self.device_frame, self.device_ns = picture[1], picture[2]

    def capture_ns(self) -> int | None:
        return self._captured_ns or None

    def flush(self) -> None:
        """Nothing piles up: a triggered camera exposes only when triggered, and a free
        one's drain keeps only its newest frames."""

    @property
    def dropped(self) -> int:
        """Exposures the camera failed to deliver."""
        return self._dropped

    def _latch_deadline_ns(self, moment_ns: int) -> int:
        return latch_deadline_ns(moment_ns, float(self._actual["fps"]))

    def _read_timeout_s(self) -> float:
        return float(self._options["read_timeout_ms"]) / 1000
