"""The one error an export raises, whatever went wrong, so a caller catches one thing."""

from __future__ import annotations


class ExportError(Exception):
    """A take could not be exported: the message names the take, the format and the
    problem (an unfinished take, a missing library, an unreadable or unwritable file)."""
