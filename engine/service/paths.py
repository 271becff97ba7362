"""Where a running engine keeps its control socket and key.

One engine per runtime folder. RECORDER_RUNTIME_DIR overrides the folder (tests use
it to run engines side by side without touching a user's engine).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import platformdirs

APP_NAME = "recorder-workstation"
RUNTIME_DIR_ENV = "RECORDER_RUNTIME_DIR"
SOCKET_NAME = "engine.sock"
KEY_NAME = "engine.key"
LOG_NAME = "engine.log"


def runtime_dir() -> Path:
    """The per-user folder for the socket and key (created 0700 if missing)."""
    override = os.environ.get(RUNTIME_DIR_ENV)
    if override:
        folder = Path(override)
    else:
        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs falls back, fine
            warnings.simplefilter("ignore")
            folder = Path(platformdirs.user_runtime_dir(APP_NAME))
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            folder = Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def socket_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / SOCKET_NAME


def key_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / KEY_NAME


def log_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / LOG_NAME
