"""Making writes survive a power cut, not just a crash."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path (a read-only descriptor is enough on Linux).

    A folder's fsync is what makes a rename or a new file in it durable.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
