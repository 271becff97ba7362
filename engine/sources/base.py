"""The one small protocol every frame source speaks.

open -> settings() -> grab() -> retrieve(out) -> apply(changes) -> close().
`retrieve` fills a caller-owned buffer (a shared-memory ring slot) in place, so a
frame is written exactly once on its way from the device to the ring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CaptureClock = Literal["source", "arrival", "after_grab"]
"""Where a camera's capture times come from: the source's own clock (a free-running
synthetic camera), the frame's arrival at the demuxer (a network stream), or the camera
process's after-grab stamp (a source that cannot tell)."""


class Source(Protocol):
    """A camera-like source of BGR frames (height x width x 3, uint8)."""

    def open(self) -> None:
        """Open the device; raise SourceError naming the source if it will not open."""

    def settings(self) -> dict[str, Any]:
        """Settings actually in effect: at least width, height and fps."""

    def properties(self) -> list[PropertySpec]:
        """Adjustable properties with their types, limits and choices."""

    def grab(self) -> bool:
        """Block until the next frame is latched; False when the device failed."""

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

    def resync(self) -> None:
        """This camera just waited at the sync gate for a slower one: if a frame became
        due meanwhile, skip it, so the next grab is as fresh as the slower camera's.

        Sources that cannot tell (a driver queue) do nothing."""

    @property
    def dropped(self) -> int:
        """Frames the device produced that were never grabbed."""

    def close(self) -> None:
        """Release the device; safe to call twice."""
