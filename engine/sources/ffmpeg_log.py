"""FFmpeg's own log lines go to the engine's log, never to a user's terminal.

PyAV hands FFmpeg's lines to Python's logging (loggers "libav.<component>") once a level
is set. route_ffmpeg_log() does that once per process that opens FFmpeg (a network
camera calls it as it connects: camera processes are spawned, so each routes its own)
and forwards the lines to the logger "engine.ffmpeg". Where they end up:

- a process whose logging is set up (the engine service, `recorder-engine serve`): its
  handlers, i.e. the engine's log;
- a process whose stderr is the engine's log (a camera process of an engine that a
  client launched: that engine's output, its processes' too, goes to its log, see
  engine/service/engine_log.py): the log, through that stderr;
- any other (a camera process of `recorder-engine record`, whose stderr is the user's
  terminal): nowhere, unless asked with RECORDER_FFMPEG_LOG=LEVEL (error, warning, info,
  verbose, debug), which prints them on stderr from that level up.

What the user reads about a failure is the camera's own message (stream_problems.explain),
never these lines. opening() also keeps the lines of one open, FFmpeg's details up to
verbose, so that message can name what FFmpeg saw (the SDP of an RTSP camera, a codec).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import av.logging

from engine.wire.paths import STDERR_IS_LOG_ENV

FFMPEG_LOGGER = "engine.ffmpeg"
FFMPEG_LOG_ENV = "RECORDER_FFMPEG_LOG"
# FFmpeg's levels by name, for RECORDER_FFMPEG_LOG.
LEVELS = {"error": av.logging.ERROR, "warning": av.logging.WARNING, "info": av.logging.INFO,
          "verbose": av.logging.VERBOSE, "debug": av.logging.DEBUG}
DEFAULT_LEVEL = av.logging.ERROR  # the engine's log gets FFmpeg's errors
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"  # as the engine's log (service/engine_log.py)
# On a stderr that is the engine's log, which stamps each line with its own time.
ENGINE_LOG_FORMAT = "%(name)s: %(message)s"

FFmpegLine = tuple[int, str, str]  # FFmpeg's level, its component ("rtsp", "tls"), the text

_level: int | None = None  # FFmpeg's level of this process once routed


class _ToEngineLog(logging.Handler):
    """PyAV's "libav.<component>" records, re-told under "engine.ffmpeg"."""

    def emit(self, record: logging.LogRecord) -> None:
        component = record.name.removeprefix("libav.")
        logger = logging.getLogger(FFMPEG_LOGGER)
        if logger.isEnabledFor(record.levelno):
            logger.log(record.levelno, "[%s] %s", component, record.getMessage())


def route_ffmpeg_log() -> None:
    """Send this process's FFmpeg lines to the engine's log (see the module's doc); once
    per process, later calls do nothing."""
    global _level
    if _level is not None:
        return
    asked = os.environ.get(FFMPEG_LOG_ENV, "").strip().lower()
    _level = LEVELS.get(asked, DEFAULT_LEVEL)
    logger = logging.getLogger(FFMPEG_LOGGER)
    logger.setLevel(av.logging.adapt_level(_level))
    if not logging.getLogger().handlers:  # this process's logging is not set up
        logger.propagate = False
        if _stderr_is_engine_log():
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(ENGINE_LOG_FORMAT))
        elif asked in LEVELS:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
        else:
            handler = logging.NullHandler()
        logger.addHandler(handler)
    libav = logging.getLogger("libav")
    libav.setLevel(logging.NOTSET)  # PyAV set WARNING; our logger's level decides
    libav.propagate = False  # never Python's last-resort print to stderr
    libav.addHandler(_ToEngineLog())
    av.logging.set_level(_level)


def _stderr_is_engine_log() -> bool:
    """Whether stderr is the engine's log: the engine that spawned this process says so in
    the environment its processes inherit."""
    return os.environ.get(STDERR_IS_LOG_ENV) == "1"


@contextmanager
def opening() -> Iterator[list[FFmpegLine]]:
    """Around one open of a stream on this thread: yields the list that receives FFmpeg's
    lines of the open, down to verbose (what a failure's message may need); on leaving,
    they go to the engine's log like any other (the verbose ones at debug level)."""
    route_ffmpeg_log()
    routed = av.logging.get_level()
    av.logging.set_level(max(av.logging.VERBOSE, routed or 0))
    try:
        with av.logging.Capture() as lines:
            yield lines
    finally:
        av.logging.set_level(routed)
        logger = logging.getLogger(FFMPEG_LOGGER)
        for level, component, text in lines:
            python_level = av.logging.adapt_level(level)
            if logger.isEnabledFor(python_level):
                logger.log(python_level, "[%s] %s", component, text.strip())
