"""The embedded test-pattern camera.

Two clocks. "gated" (the default): frames are due on a fixed schedule that starts again
whenever the group is held, and each frame is stamped (framecode) with the group's frame
number, so tests and the CLI can prove frame k of every file is the same frame set.
"free": the camera runs on its own clock like real hardware (its rate a little off,
jitter, missed frames; engine/sources/free_clock.py) and stamps its own frame counter,
so a recording shows which source frame each frame set got and where frames were skipped,
and with time_stamp below it the moment the frame was captured (clockstamp, on the
machine's clock), so decoding a recording proves which moment each file's frame k holds,
across the machines of a rig too.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from engine import machine_clock
from engine.pacing import DeadlinePacer, sleep_toward_ns, sleep_until_ns
from engine.sources import clockstamp, framecode, validate_changes
from engine.sources.base import CaptureClock, Latch, PropertySpec, SettingRejected, SourceError
from engine.sources.free_clock import FreeClock, max_jitter_ms
from engine.sources.scene import RealisticScene

PATTERNS = ("gradient", "bars", "noise")
# clean: the test pattern; realistic: texture, motion and sensor noise (engine/sources/scene.py)
CONTENTS = ("clean", "realistic")
TEST_HOOKS = ("fail_after_frames", "stall_after_frames", "grab_delay_ms")
CLOCKS = ("gated", "free")
# Settings of the free clock: listed by properties() only for a free-running camera.
FREE_CLOCK_KEYS = ("rate_scale", "jitter_ms", "miss_probability", "seed", "time_stamp")

# What a synthetic camera starts with (also what its dialog's "Reset to defaults" shows).
DEFAULTS: dict[str, Any] = {
    "width": 640, "height": 480, "fps": 30.0, "paced": True, "brightness": 0,
    "exposure": 1.0, "pattern": "gradient", "fail_after_frames": None,
    "stall_after_frames": None, "grab_delay_ms": 0.0, "clock": "gated",
    "rate_scale": 1.0, "jitter_ms": 0.0, "miss_probability": 0.0, "seed": 0,
    "content": "clean", "noise": 4.0, "time_stamp": False,
}
# The modes it offers to pick from, like a webcam's list; any other even size is taken too.
MODES = ((320, 240, 30.0), (640, 480, 30.0), (640, 480, 60.0), (1280, 720, 30.0),
         (1280, 720, 60.0), (1920, 1080, 30.0))

# BGR tints cycled by camera index, so tiles of different cameras look different.
_TINTS = np.array(
    [(1.0, 0.55, 0.25), (0.3, 0.9, 0.4), (0.3, 0.45, 1.0), (0.95, 0.35, 0.95),
     (0.2, 0.9, 0.95), (0.9, 0.9, 0.3), (0.7, 0.7, 0.7), (0.45, 0.3, 0.9)],
    dtype=np.float32,
)
_BARS = np.array(
    [(255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
     (255, 0, 255), (0, 0, 255), (255, 0, 0), (16, 16, 16)],
    dtype=np.float32,
)
class SyntheticSource:
    """A paced test pattern at the requested size and rate, stamped with framecode.

    Settings (all also accepted by apply()): width, height, fps, paced (False: grab
    returns at once, for benchmarks), brightness, exposure, pattern, clock ("gated" or
    "free"), content ("clean": the test pattern; "realistic": a textured scene that drifts,
    a moving ball and sensor noise, which cost an encoder what a real camera's pictures do),
    noise (the realistic content's sensor noise, sd in grey levels). Free-running only:
    rate_scale (the clock runs at fps x rate_scale: 0.999 makes a nominal 30 fps camera
    deliver 29.97), jitter_ms (each frame within
    +-jitter_ms of its tick, uniform), miss_probability (of a frame the sensor skips),
    seed (of the jitter and misses; each camera index gets its own schedule), time_stamp
    (burn each frame's capture time into it too).

    Failure injection for tests (accepted by apply() and the constructor, not listed
    by properties()):
    - fail_after_frames (int or None): grab() returns False once that many frames
      were grabbed since open(), like a camera that died.
    - stall_after_frames (int or None): grab() never returns once that many frames
      were grabbed, like a frozen driver (the supervisor's stall check finds it).
    - grab_delay_ms (float): extra latency per grab, like a slow camera; a delay
      longer than the frame period lowers the rate and is not counted as dropped.
    """

    device_frame = -1  # a test pattern has no counter or clock of its own (see Source)
    device_ns = -1

    def __init__(
        self,
        camera_index: int = 0,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._camera_index = camera_index
        self._values: dict[str, Any] = dict(DEFAULTS)
        self._values = self._validated({"width": width, "height": height, "fps": fps,
                                        **(settings or {})})
        self._pacer = DeadlinePacer(self._values["fps"])
        self._clock = self._free_clock()
        self._opened = False
        self._background: np.ndarray | None = None  # the clean test pattern
        self._scene: RealisticScene | None = None  # the realistic content
        self._scene_settings: tuple[Any, ...] = ()  # what self._scene was built with
        self._lighting = (1.0, 0.0)  # the scene's gain (from exposure) and offset (brightness)
        self._grabs = 0
        self._dropped = 0
        self._source_frame = -1  # the free clock's number of the latched frame
        self._capture_ns: int | None = None
        self._gap_forgiven = False  # flushed: frames produced while held are not dropped

    # -- protocol --------------------------------------------------------------

    def open(self) -> None:
        self._opened = True
        self._build_background()
        self._pacer.reset()
        if self._clock is not None:
            self._clock.start()
        self._grabs = 0
        self._dropped = 0
        self._source_frame = -1
        self._gap_forgiven = False

    def settings(self) -> dict[str, Any]:
        return dict(self._values)

    def properties(self) -> list[PropertySpec]:
        # A gated camera lists no clock settings (a real camera has no such choice); a
        # free-running one lists them all, so its dialog can tune or leave the free clock.
        hidden = TEST_HOOKS if self._clock is not None else (*TEST_HOOKS, "clock",
                                                              *FREE_CLOCK_KEYS)
        return [spec for spec in _specs(self._values) if spec.name not in hidden]

    @property
    def free_running(self) -> bool:
        return self._clock is not None

    def grab(self) -> bool:
        """The next frame: the gated clock's next tick, or the free clock's newest frame
        (waiting for one if none came since the last grab)."""
        if not self._may_grab():
            return False
        if self._clock is not None:
            self._took(self._clock.take())
        elif self._values["paced"]:
            self._dropped += self._pacer.wait()
        self._delay()
        return True

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        return sleep_toward_ns(moment_ns, limit_ns)

    def latch_at(self, moment_ns: int) -> Latch:
        """Gated: the frame is made at the set's moment (unpaced: at once), like a camera
        on the group's trigger. Free: the newest captured at or before it, or REPEAT."""
        if not self._may_grab():
            return Latch.FAILED
        if self._clock is None:
            if self._values["paced"]:
                sleep_until_ns(moment_ns)
            self._delay()
            return Latch.NEW
        taken = self._clock.take_at(moment_ns)
        if taken is None and self._source_frame >= 0:
            self._delay()
            return Latch.REPEAT
        self._took(taken if taken is not None else self._clock.take())
        self._delay()
        return Latch.NEW

    def _may_grab(self) -> bool:
        """False for an injected failure; never returns for an injected stall."""
        if not self._opened:
            raise SourceError("synthetic camera is not open")
        values = self._values
        if values["fail_after_frames"] is not None and self._grabs >= values["fail_after_frames"]:
            return False
        if values["stall_after_frames"] is not None and self._grabs >= values["stall_after_frames"]:
            while True:
                time.sleep(1.0)
        self._grabs += 1
        return True

    def _took(self, taken: tuple[int, int]) -> None:
        """Latch a free-clock frame; the frames produced meanwhile and those the sensor
        missed count alike as dropped."""
        number, self._capture_ns = taken
        if not self._gap_forgiven:
            self._dropped += number - self._source_frame - 1
        self._gap_forgiven = False
        self._source_frame = number

    def _delay(self) -> None:
        if self._values["grab_delay_ms"]:
            self._pacer.stall(self._values["grab_delay_ms"] / 1000.0)

    def capture_ns(self) -> int | None:
        """When the free clock produced the latched frame; None for the gated clock."""
        return self._capture_ns if self._clock is not None else None

    @property
    def capture_clock(self) -> CaptureClock:
        return "source" if self._clock is not None else "after_grab"

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        if not self._opened:
            raise SourceError("synthetic camera is not open")
        shape = (self._values["height"], self._values["width"], 3)
        if out.shape != shape:
            raise SourceError(f"buffer shape {out.shape} != frame {shape}")
        if self._clock is not None:  # the picture follows the camera's own count
            frame_number = self._source_frame
        if self._scene is not None:
            self._scene.render(out, frame_number, *self._lighting)
        else:
            self._draw_pattern(out, frame_number)
        framecode.burn(out, frame_number, self._camera_index)  # last: noise would garble it
        if self._clock is not None and self._values["time_stamp"] and self._capture_ns is not None:
            clockstamp.burn(out, self._capture_ns + machine_clock.offset_ns(), frame_number)

    def _draw_pattern(self, out: np.ndarray, frame_number: int) -> None:
        """The clean test pattern: the background and a square bouncing across it."""
        assert self._background is not None
        np.copyto(out, self._background)
        size, x_span, y_top, y_span = self._square
        x = frame_number * 7 % x_span
        y = frame_number * 5 % (2 * y_span)
        y = y_top + (y if y < y_span else 2 * y_span - y)
        out[y:y + size, x:x + size] = 255

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        values = self._validated(changes)
        if values["fps"] != self._values["fps"]:
            self._pacer = DeadlinePacer(values["fps"])
        restart_clock = any(values[key] != self._values[key]
                            for key in ("fps", "clock", *FREE_CLOCK_KEYS))
        self._values = values
        if restart_clock:
            self._clock = self._free_clock()
            if self._clock is not None and self._opened:
                self._clock.start(first_number=self._source_frame + 1)
        if self._opened:
            self._build_background()
        return self.settings()

    def flush(self) -> None:
        # The free clock keeps no backlog to discard; like the gated schedule's reset, the
        # frames it produced while the group was held do not count as dropped.
        self._pacer.reset()
        self._gap_forgiven = True

    @property
    def dropped(self) -> int:
        return self._dropped

    def close(self) -> None:
        self._opened = False
        self._background = None
        self._scene = None
        self._scene_settings = ()

    # -- internals -------------------------------------------------------------

    def _validated(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The settings after `changes`, fully checked; self is not modified."""
        changes = dict(changes)
        clear_failure = "fail_after_frames" in changes and changes["fail_after_frames"] is None
        if clear_failure:
            del changes["fail_after_frames"]
        values = {**self._values, **validate_changes(_specs(self._values), changes)}
        if clear_failure:
            values["fail_after_frames"] = None
        stamp_rows = _stamp_rows(values)
        if values["height"] < stamp_rows + 32:
            raise SettingRejected(
                f"height {values['height']} is too small for width {values['width']}: the "
                f"frame stamp needs {stamp_rows} rows plus 32 for the pattern"
            )
        rate = values["fps"] * values["rate_scale"]
        if values["jitter_ms"] >= max_jitter_ms(rate):
            raise SettingRejected(
                f"jitter_ms must be below half a frame period ({max_jitter_ms(rate):.3g} ms "
                f"at {rate:g} fps), got {values['jitter_ms']:g}"
            )
        if values["clock"] == "free" and not values["paced"]:
            raise SettingRejected('paced must be true with clock "free" (unpaced is gated only)')
        return values

    def _free_clock(self) -> FreeClock | None:
        """The camera's own clock when it free-runs; None for the gated clock."""
        values = self._values
        if values["clock"] != "free":
            return None
        seed = values["seed"] << 8 | self._camera_index & 0xFF
        return FreeClock(values["fps"] * values["rate_scale"], values["jitter_ms"],
                         values["miss_probability"], seed)

    def _build_background(self) -> None:
        """Render everything that does not change per frame, once per settings change: the
        clean pattern's background, or the realistic scene."""
        width, height = self._values["width"], self._values["height"]
        tint = _TINTS[self._camera_index % len(_TINTS)]
        gain = 0.9 + 0.02 * self._values["exposure"]
        if self._values["content"] == "realistic":
            self._background = None
            self._lighting = (gain, float(self._values["brightness"]))
            self._build_scene(tint)
            return
        self._scene, self._scene_settings = None, ()
        pattern = self._values["pattern"]
        if pattern == "bars":
            columns = _BARS[np.arange(width) * len(_BARS) // width]
            image = np.broadcast_to(columns * (0.5 + 0.5 * tint), (height, width, 3))
        elif pattern == "noise":
            rng = np.random.default_rng(self._camera_index)
            image = rng.integers(0, 256, (height, width, 1)).astype(np.float32) * tint
        else:
            ramp = (0.65 * np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
                    + 0.35 * np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None])
            image = 30.0 + 200.0 * ramp[:, :, None] * tint
        background = np.clip(image * gain + self._values["brightness"], 0, 255).astype(np.uint8)

        stamp_rows = _stamp_rows(self._values)
        label = (f"cam {self._camera_index} synthetic {width}x{height}"
                 f"@{self._values['fps']:g}")
        scale = max(0.4, width / 1000.0)
        origin = (max(4, width // 80), stamp_rows + int(32 * scale) + 4)
        for colour, thickness in (((0, 0, 0), 4), ((255, 255, 255), 1)):
            cv2.putText(background, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                        max(1, int(thickness * scale)), cv2.LINE_AA)

        size = max(8, min(height // 12, (height - stamp_rows) // 2))
        y_top = stamp_rows + size // 2  # a margin keeps codec blur off the stamp
        self._square = (size, width - size, y_top, max(1, height - y_top - size))
        self._background = background

    def _build_scene(self, tint: np.ndarray) -> None:
        """Build the realistic scene again only when its size, noise or stamp rows changed: building
        takes a tenth of a second or more (at 720p), which other changes need not wait."""
        width, height, noise, clock = (self._values[key]
                                       for key in ("width", "height", "noise", "clock"))
        stamps = (clock, self._values["time_stamp"])
        if self._scene is not None and (width, height, noise, stamps) == self._scene_settings:
            return
        # The ball keeps a block's height off the stamp, so codec blur leaves it readable.
        clear_rows = _stamp_rows(self._values) + framecode.block_size(width)
        self._scene = RealisticScene(width, height, tint, self._camera_index, noise, clear_rows)
        self._scene_settings = (width, height, noise, stamps)


def _stamp_rows(values: dict[str, Any]) -> int:
    """Rows the stamps take at the top of a frame: a free-running camera's capture time
    goes below the frame counter."""
    width = values["width"]
    timed = values["clock"] == "free" and values["time_stamp"]
    return clockstamp.band_height(width) if timed else framecode.band_height(width)


def _specs(values: dict[str, Any]) -> list[PropertySpec]:
    """Property metadata, test hooks included (properties() leaves those out)."""
    specs = [
        PropertySpec("width", "int", values["width"], framecode.MIN_WIDTH, 3840, 2, reopen=True,
                     modes=MODES),
        PropertySpec("height", "int", values["height"], 120, 2160, 2, reopen=True),
        PropertySpec("fps", "float", values["fps"], 1, 1000, reopen=True),
        PropertySpec("paced", "bool", values["paced"]),
        PropertySpec("brightness", "int", values["brightness"], -100, 100, 1),
        PropertySpec("exposure", "float", values["exposure"], 0.1, 10.0),
        PropertySpec("pattern", "choice", values["pattern"], choices=PATTERNS,
                     inactive=values["content"] != "clean"),
        PropertySpec("content", "choice", values["content"], choices=CONTENTS),
        PropertySpec("noise", "float", values["noise"], 0, 30,
                     inactive=values["content"] != "realistic"),
        PropertySpec("fail_after_frames", "int", values["fail_after_frames"], 0),
        PropertySpec("stall_after_frames", "int", values["stall_after_frames"], 0),
        PropertySpec("grab_delay_ms", "float", values["grab_delay_ms"], 0, 10_000),
        PropertySpec("clock", "choice", values["clock"], choices=CLOCKS),
        PropertySpec("rate_scale", "float", values["rate_scale"], 0.5, 2.0),
        PropertySpec("jitter_ms", "float", values["jitter_ms"], 0, 100),
        PropertySpec("miss_probability", "float", values["miss_probability"], 0, 0.5),
        PropertySpec("seed", "int", values["seed"], 0, 2**31 - 1, 1),
        PropertySpec("time_stamp", "bool", values["time_stamp"], reopen=True),
    ]
    return [replace(spec, default=DEFAULTS[spec.name]) for spec in specs]
