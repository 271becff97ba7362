"""A hardware record button: short, double and long presses from any on/off input line.

`PressClassifier` is pure: feed it (time, pressed) pairs, either edges or levels polled
every `check_interval_s`, and it returns the presses they complete. A double press is only
waited for when `allow_double()` says so at release (the engine allows it while idle); at
any other time a short press fires on release, without the 0.5 s wait. A long press fires
once the button has been held `long_press_threshold_s`, even before release.

`ButtonPoller` runs a classifier over a line on a thread; `open_gpio_button` makes one for a
libgpiod line, or returns None where there is no libgpiod or no such chip.
"""

from __future__ import annotations

import enum
import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LineAccess = tuple[Callable[[], bool], Callable[[], None]]  # (read pressed, release)
GPIO_EXTRA = "recorder-workstation[gpio]"  # what installs the bindings (pyproject.toml)


class Press(enum.StrEnum):
    SHORT = "short"
    DOUBLE = "double"
    LONG = "long"


@dataclass(frozen=True)
class ButtonConfig:
    """Press timing; the defaults follow the reference runtime."""

    long_press_threshold_s: float = 5.0
    double_press_window_s: float = 0.5
    check_interval_s: float = 0.02


class PressClassifier:
    """Turns a line's (time, pressed) samples into presses."""

    def __init__(self, config: ButtonConfig | None = None,
                 allow_double: Callable[[], bool] = lambda: True) -> None:
        self.config = config or ButtonConfig()
        self._allow_double = allow_double
        self._pressed = False
        self._down_at = 0.0
        self._press_done = False  # this press already counted (long, or second of a double)
        self._tap_at: float | None = None  # release of a first tap that may become a double

    def update(self, now: float, pressed: bool) -> list[Press]:
        """Presses completed by the line being `pressed` at `now` (usually none)."""
        cfg = self.config
        events: list[Press] = []
        if pressed and not self._pressed:
            if self._tap_at is not None and now - self._tap_at <= cfg.double_press_window_s:
                events.append(Press.DOUBLE)
                self._press_done = True
            else:
                if self._tap_at is not None:
                    events.append(Press.SHORT)
                self._press_done = False
            self._tap_at = None
            self._down_at = now
        elif pressed:
            if not self._press_done and now - self._down_at >= cfg.long_press_threshold_s:
                events.append(Press.LONG)
                self._press_done = True
        elif self._pressed:
            if not self._press_done:
                if now - self._down_at >= cfg.long_press_threshold_s:
                    events.append(Press.LONG)  # edges only: the hold is known at release
                elif self._allow_double():
                    self._tap_at = now
                else:
                    events.append(Press.SHORT)
        elif self._tap_at is not None and now - self._tap_at > cfg.double_press_window_s:
            events.append(Press.SHORT)
            self._tap_at = None
        self._pressed = pressed
        return events


class ButtonPoller:
    """Polls read_pressed() every check_interval_s on a thread and calls on_press(press).

    on_press runs on the poller's thread and should return quickly.
    """

    def __init__(
        self,
        read_pressed: Callable[[], bool],
        on_press: Callable[[Press], None],
        config: ButtonConfig | None = None,
        allow_double: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._classifier = PressClassifier(config, allow_double)
        self._read = read_pressed
        self._on_press = on_press
        self._clock = clock
        self._release = release
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="record-button", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and release the line."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._release is not None:
            release, self._release = self._release, None
            try:
                release()
            except OSError as exc:
                log.debug("releasing the button line: %s", exc)

    def _run(self) -> None:
        interval = self._classifier.config.check_interval_s
        while not self._stopping.wait(interval):
            try:
                pressed = bool(self._read())
            except OSError as exc:
                log.warning("record button unreadable, no longer polled: %s", exc)
                return
            for press in self._classifier.update(self._clock(), pressed):
                try:
                    self._on_press(press)
                except Exception:
                    log.exception("record button action for a %s press failed", press)


def open_gpio_button(
    chip: str,
    line: int,
    on_press: Callable[[Press], None],
    *,
    active_low: bool = True,
    config: ButtonConfig | None = None,
    allow_double: Callable[[], bool] = lambda: True,
) -> ButtonPoller | None:
    """A poller (not started) for a button on a libgpiod line, or None without one.

    The line is an input with the pull-up on, so a button wired to ground reads as pressed
    when closed (active_low). libgpiod 2 (`gpiod` from PyPI, the `gpio` extra) and 1
    (Debian's python3-libgpiod) are both understood. Called only when the rig asks for a
    button, so one it cannot have is a warning that says what is missing.
    """
    try:
        import gpiod  # optional: most workstations have no GPIO
    except ImportError:
        log.warning("the rig asks for a record button on %s line %d, but libgpiod's Python "
                    "bindings are not installed: pip install '%s' (or Debian's "
                    "python3-libgpiod); no hardware record button", chip, line, GPIO_EXTRA)
        return None
    if not Path(chip).exists():
        log.warning("the rig asks for a record button on %s line %d, but there is no such "
                    "GPIO chip: no hardware record button", chip, line)
        return None
    try:
        if hasattr(gpiod, "request_lines"):
            read, release = _request_v2(gpiod, chip, line, active_low)
        else:
            read, release = _request_v1(gpiod, chip, line, active_low)
    except (OSError, ValueError) as exc:
        log.warning("record button on %s line %d unavailable: %s", chip, line, exc)
        return None
    return ButtonPoller(read, on_press, config, allow_double, release=release)


def _request_v2(gpiod: Any, chip: str, line: int, active_low: bool) -> LineAccess:
    from gpiod.line import Bias, Direction, Value

    settings = gpiod.LineSettings(direction=Direction.INPUT, bias=Bias.PULL_UP,
                                  active_low=active_low)
    request = gpiod.request_lines(chip, consumer="recorder-button", config={line: settings})
    return (lambda: request.get_value(line) == Value.ACTIVE), request.release


def _request_v1(gpiod: Any, chip: str, line: int, active_low: bool) -> LineAccess:
    handle = gpiod.Chip(chip)
    gpio_line = handle.get_line(line)
    flags = gpiod.LINE_REQ_FLAG_BIAS_PULL_UP | (gpiod.LINE_REQ_FLAG_ACTIVE_LOW if active_low else 0)
    gpio_line.request(consumer="recorder-button", type=gpiod.LINE_REQ_DIR_IN, flags=flags)

    def release() -> None:
        gpio_line.release()
        handle.close()

    return (lambda: gpio_line.get_value() == 1), release


def run_hook(command: str, timeout_s: float = 600.0) -> threading.Thread:
    """Run a configured command (split like a shell, run without one) on a daemon thread.

    For the long press's network-setup hook: the button thread must not wait for it. The
    outcome is logged; the returned thread ends when the command does.
    """
    def run() -> None:
        try:
            done = subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("hook %r failed: %s", command, exc)
            return
        if done.returncode:
            log.warning("hook %r exited with %d: %s", command, done.returncode,
                        done.stderr.strip()[-500:])
        else:
            log.info("hook %r done", command)

    thread = threading.Thread(target=run, name="button-hook", daemon=True)
    thread.start()
    return thread
