"""The one small protocol every frame source speaks.

open -> settings() -> latch_at(moment) -> retrieve(out) -> apply(changes) -> close().
`retrieve` fills a caller-owned buffer (a shared-memory ring slot) in place, so a
frame is written exactly once on its way from the device to the ring.

A free-running source (a real camera: its frames come on its own clock) is sampled:
for each frame set the group names a moment, and the source latches the frame it
captured nearest at or before it, or repeats the previous one when none came since.
A gated source (a file, the gated synthetic camera) makes its next frame at the moment,
like a camera on the group's trigger.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any, Literal, Protocol

import numpy as np


class SourceError(RuntimeError):
    """A source cannot be parsed, opened or read; the message names the source."""


class SettingRejected(ValueError):
    """A requested setting cannot be applied; the message says why."""


@dataclass(frozen=True)
class PropertySpec:
    """Metadata of one adjustable property, enough to generate an editor for it.

    kind is one of "int", "float", "bool", "choice". `reopen` marks properties
    whose change alters the frame geometry or rate (the ring must be re-created).
    `default` is what the source starts with unless told otherwise (None: it has no
    default of its own, such as a driver's control). `modes` is given on the "width"
    property only, by a source that can list them: the (width, height, fps) modes the
    camera offers, so a user picks one instead of typing a size; empty when it cannot.
    `inactive`: the device ignores the value for now, because another setting decides
    it (a camera's white balance temperature while its automatic white balance is on).
    """

    name: str
    kind: str
    value: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = field(default_factory=tuple)
    read_only: bool = False
    reopen: bool = False
    default: Any = None
    modes: tuple[tuple[int, int, float], ...] = ()
    inactive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CaptureClock = Literal["source", "driver", "rtcp", "rtp", "trigger", "arrival_fit", "arrival",
                       "after_grab"]
"""Where a camera's capture times come from: the source's own clock (a free-running
synthetic camera), the driver's buffer timestamp (V4L2), the stream's RTP timestamps
mapped onto the local clock by the camera's RTCP sender reports ("rtcp") or by the
fastest frame ("rtp"), the moment the camera process fired the camera's software trigger
(the exposure's start), the camera's steady clock fitted under its frames' arrivals
("arrival_fit": a stream that carries no usable times), the frame's arrival, or the
camera process's after-grab stamp (a source that cannot tell)."""


class Latch(IntEnum):
    """What latch_at() found for a frame set."""

    FAILED = 0  # the device failed or went silent for its read timeout
    NEW = 1  # a frame not used by any earlier set
    REPEAT = 2  # no frame came since the previous set: that one is used again


class Source(Protocol):
    """A camera-like source of BGR frames (height x width x 3, uint8).

    device_frame / device_ns: the camera's own frame counter and clock for the frame
    retrieved last (a machine-vision camera's); -1 for a camera that reports none."""

    device_frame: int
    device_ns: int

    def open(self) -> None:
        """Open the device; raise SourceError naming the source if it will not open."""

    def settings(self) -> dict[str, Any]:
        """Settings actually in effect: at least width, height and fps."""

    def properties(self) -> list[PropertySpec]:
        """Adjustable properties with their types, limits and choices."""

    @property
    def free_running(self) -> bool:
        """Frames come on the device's own clock: the group samples them at set moments
        (the camera process waits for the moment). False: the source paces itself."""

    def grab(self) -> bool:
        """Block until the next frame is latched; False when the device failed."""

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        """A free-running source: block until the frame for the set at moment_ns can be
        chosen (the moment has come, and where frames arrive after they were captured, one
        captured after it has arrived), but not past limit_ns; True when it can."""

    def latch_at(self, moment_ns: int) -> Latch:
        """Latch the frame for the frame set at moment_ns (monotonic ns): a free-running
        source's frame captured nearest at or before it, or REPEAT; a gated source's next
        frame, made at the moment (it waits for it, unless unpaced)."""

    def capture_ns(self) -> int | None:
        """When the latched frame was captured, on time.monotonic_ns's clock; None when the
        source cannot tell (the camera process's after-grab stamp then stands in)."""

    @property
    def capture_clock(self) -> CaptureClock:
        """The kind of clock capture_ns() reads, as the recording's manifest names it."""

    def retrieve(self, out: np.ndarray, frame_number: int) -> None:
        """Write the latched frame into `out` in place (shape from settings())."""

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply changes; return the settings now in effect or raise SettingRejected."""

    def flush(self) -> None:
        """Discard frames that piled up while the group was held (pause, update)."""

    @property
    def dropped(self) -> int:
        """Frames the device produced that were never grabbed."""

    def close(self) -> None:
        """Release the device; safe to call twice."""
