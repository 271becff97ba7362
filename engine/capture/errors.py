"""The capture controller's one error type (its parts all raise it)."""

from __future__ import annotations


class GroupError(RuntimeError):
    """The group cannot do what was asked; the message names the camera and the reason.

    `failed` maps the ids of cameras that could not start to their reasons.
    """

    def __init__(self, message: str, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or {}
