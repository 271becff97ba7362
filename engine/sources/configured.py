"""What every device-backed source keeps of its settings, whatever reads its frames.

A camera is asked for a size and rate (`requested`), reports what it delivers once open
(`actual`), and holds options the user can change (`options`). Validation against the
property specs happens here, once, for USB cameras, files and network streams alike.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.pacing import sleep_toward_ns
from engine.sources import SourceKind, validate_changes
from engine.sources.base import PropertySpec


class ConfiguredSource:
    """Settings bookkeeping; subclasses open, read and close."""

    kind_label = "camera"
    device_frame = -1  # no counter or clock of the camera's own (see Source)
    device_ns = -1

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
        self._actual: dict[str, Any] = {}  # what the open device delivers; empty while closed
        self._store(validate_changes(self._specs(), settings or {}))

    def settings(self) -> dict[str, Any]:
        return {**(self._actual or self._requested), **self._options}

    def properties(self) -> list[PropertySpec]:
        return self._specs()

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        self._store(validate_changes(self._specs(), changes))
        return self.settings()

    def wait_for_moment(self, moment_ns: int, limit_ns: int) -> bool:
        return sleep_toward_ns(moment_ns, limit_ns)

    def close(self) -> None:
        self._actual = {}

    def _default_options(self) -> dict[str, Any]:
        return {}

    def _option_specs(self) -> list[PropertySpec]:
        return []

    def _specs(self) -> list[PropertySpec]:
        """The size and rate are the stream's or file's own (read-only; once open, its one
        mode), then the options, each with its default."""
        values = self.settings()
        own_mode = ((values["width"], values["height"], values["fps"]),) if self._actual else ()
        defaults = self._default_options()
        return [
            PropertySpec("width", "int", values["width"], 16, 7680, 2, read_only=True,
                         modes=own_mode),
            PropertySpec("height", "int", values["height"], 16, 4320, 2, read_only=True),
            PropertySpec("fps", "float", values["fps"], 0.001, 1000, read_only=True),
            *(replace(spec, default=defaults.get(spec.name)) for spec in self._option_specs()),
        ]

    def _store(self, values: dict[str, Any]) -> None:
        """Take validated changes into effect."""
        self._options.update(values)
