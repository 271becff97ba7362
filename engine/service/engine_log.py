"""The engine's log: one file in the user's log folder, rotated by size.

`recorder-engine serve` opens it (engine/cli.py). Its lines are the engine's state
changes (the server logs every event it publishes but the once-a-second figures) and
its warnings, never one per frame. An engine launched by a client (engine/client.py) has
no terminal: with `output_to_log`, its own output and that of every process it spawns
(a camera's traceback, FFmpeg's lines) come through a pipe into the same log, so they
rotate with it. The file is in the user's log folder (engine/wire/paths.py), never in the
runtime folder, a tmpfs that a reboot empties.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

from engine.wire.paths import STDERR_IS_LOG_ENV, log_path

LOG_MAX_BYTES = 5 * 1024 * 1024  # a file is rotated when the next line would pass this
LOG_BACKUPS = 4  # engine.log.1 .. engine.log.4 are kept: at most 25 MB in all
LOG_MAX_BYTES_ENV = "RECORDER_LOG_MAX_BYTES"  # another limit (tests set a small one)
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"  # as engine/sources/ffmpeg_log.py prints
OUTPUT_LOGGER = "engine.output"
_END_OF_OUTPUT = b"\x00end of the engine's output\x00"

log = logging.getLogger(__name__)


def max_bytes() -> int:
    """The size at which the log is rotated: LOG_MAX_BYTES unless the environment says."""
    asked = os.environ.get(LOG_MAX_BYTES_ENV, "")
    return int(asked) if asked.isdigit() and int(asked) > 0 else LOG_MAX_BYTES


def open_engine_log(*, echo: bool) -> Path:
    """Send this process's logging (INFO and up) to the engine's log file and, with echo,
    to stderr too (a foreground engine's terminal); return the file's path."""
    path = log_path()
    handlers: list[logging.Handler] = [
        RotatingFileHandler(path, maxBytes=max_bytes(), backupCount=LOG_BACKUPS,
                            encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    return path


@contextlib.contextmanager
def output_to_log() -> Iterator[None]:
    """While inside, this process's stdout and stderr, and those of every process it
    spawns meanwhile, become lines of the log (logger "engine.output"). An exception
    leaving the block is logged first, since stderr no longer reaches anyone.

    Call it after open_engine_log(echo=False): a handler writing to stderr would read
    its own lines back forever."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    launched_with = os.dup(1), os.dup(2)
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    os.environ[STDERR_IS_LOG_ENV] = "1"
    reader = threading.Thread(target=_forward, args=(read_end,), name="engine-output",
                              daemon=True)
    reader.start()
    try:
        yield
    except Exception:
        log.exception("the engine stopped on an error")
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Processes still holding the pipe (multiprocessing's resource tracker lives as
        # long as this one) keep it open: the reader stops at this mark instead.
        os.write(2, _END_OF_OUTPUT + b"\n")
        reader.join(5.0)
        os.environ.pop(STDERR_IS_LOG_ENV, None)
        for descriptor, original in zip((1, 2), launched_with, strict=True):
            os.dup2(original, descriptor)
            os.close(original)


def _forward(read_end: int) -> None:
    """Each line that comes through the pipe, logged; until the end mark or the last
    writer closes it."""
    output = logging.getLogger(OUTPUT_LOGGER)
    with open(read_end, "rb") as pipe:
        for line in pipe:
            text, ended, _ = line.partition(_END_OF_OUTPUT)
            text = text.rstrip(b"\r\n")
            if text:
                output.info("%s", text.decode("utf-8", errors="replace"))
            if ended:
                return
