"""Where a running engine keeps its control socket, its key, its state database and its log.

One engine per runtime folder. RECORDER_RUNTIME_DIR overrides the folder (tests use
it to run engines side by side without touching a user's engine). The log is never
there: the runtime folder is a tmpfs that a reboot empties, so it lives in the user's log
folder (RECORDER_LOG_DIR overrides it).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import platformdirs

APP_NAME = "recorder-workstation"
RUNTIME_DIR_ENV = "RECORDER_RUNTIME_DIR"
STATE_DIR_ENV = "RECORDER_STATE_DIR"
LOG_DIR_ENV = "RECORDER_LOG_DIR"
# Set by an engine whose output goes to its log (engine/service/engine_log.py), so the
# processes it spawns know their stderr is the log, not a terminal.
STDERR_IS_LOG_ENV = "RECORDER_STDERR_IS_LOG"
STATE_DB_NAME = "engine.db"
SOCKET_NAME = "engine.sock"
KEY_NAME = "engine.key"
LOG_NAME = "engine.log"


def default_output_dir() -> Path:
    """Recordings go to the user's Videos folder unless the rig says otherwise."""
    return Path(platformdirs.user_videos_dir()) / "recordings"


def rig_takes_dir() -> Path:
    """Where a rig's coordinator writes its takes' manifests unless told: beside them."""
    return default_output_dir() / "rig-takes"


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


def state_db_path() -> Path:
    """The engine's SQLite state. RECORDER_STATE_DIR overrides the folder; an engine on
    its own runtime folder (RECORDER_RUNTIME_DIR) keeps its state there, so engines run
    side by side (tests) never restore each other's cameras."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        folder = Path(override)
    elif os.environ.get(RUNTIME_DIR_ENV):
        folder = runtime_dir()
    else:
        folder = Path(platformdirs.user_state_dir(APP_NAME))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / STATE_DB_NAME


def socket_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / SOCKET_NAME


def key_path(folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / KEY_NAME


def log_dir() -> Path:
    """The engine's log folder (created if missing): the user's log folder, which
    survives a reboot; RECORDER_LOG_DIR overrides it."""
    override = os.environ.get(LOG_DIR_ENV)
    folder = Path(override) if override else Path(platformdirs.user_log_dir(APP_NAME))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_path() -> Path:
    """The engine's log file; its rotated predecessors are beside it (engine.log.1, ...)."""
    return log_dir() / LOG_NAME
