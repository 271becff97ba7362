"""A stand-in for the engine client in settings-dialog tests: it answers the dialog's
commands from one camera source running in the test process, so the dialog is given
exactly what a real camera process would report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.wire.commands import Command, Properties, Set, Status


class SourceEngine:
    def __init__(self, source: Any) -> None:
        self.source = source

    def call(self, command: Command) -> Any:
        if isinstance(command, Properties):
            return [spec.to_dict() for spec in self.source.properties()]
        if isinstance(command, Status):
            return {"recording": None, "cameras": []}
        if isinstance(command, Set):
            return {"id": command.camera, "settings": self.source.apply(command.changes)}
        raise AssertionError(f"unexpected command {command}")

    def on_close(self, _callback: Callable[[], None]) -> None:
        pass

    def subscribe(self, _callback: Callable[[Any], None]) -> None:
        pass
