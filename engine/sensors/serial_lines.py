"""A line-based serial device: one sample per text line, numbers separated by commas or spaces.

Covers the common microcontroller IMU / logger that prints "0.01,-0.02,9.81\\n" at a
fixed rate. The device is opened with os.open (a tty, a FIFO, a pseudo-terminal or any
readable file), so no pyserial is needed: on a tty termios sets raw 8N1 and the baud rate.

A line that does not parse into exactly the configured fields is counted in `bad_lines`
and skipped: a garbled line (a wrong baud rate, a line cut in half at open) must cost
one sample, never the recording. Lines that arrive together in one read are stamped
together by the recorder; at typical rates (<= 1 kHz, 115200 baud) that is well under 1 ms.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import termios
import time
import tty

from engine.sensors.base import SensorError, parse_fields, parse_rate

BAUD_RATES = {
    int(name[1:]): getattr(termios, name)
    for name in dir(termios)
    if re.fullmatch(r"B\d+", name) and int(name[1:]) > 0
}
_MAX_LINE = 4096  # a longer run without a newline is noise (e.g. a wrong baud rate)
_SEPARATORS = re.compile(rb"[,\s]+")


class SerialLineSensor:
    """Samples parsed from the text lines of `path`; see the module docstring."""

    def __init__(
        self,
        path: str,
        fields: str | tuple[str, ...] | list[str],
        baud: int | str = 115200,
        rate_hz: float | str = 0.0,
    ) -> None:
        self.path = path
        self._name = f"serial:{path}"
        self._fields = parse_fields(self._name, fields)
        self._baud = _parse_baud(self._name, baud)
        self._rate_hz = parse_rate(self._name, rate_hz, allow_zero=True)
        self._fd: int | None = None
        self._poll = select.poll()
        self._buffer = b""
        self.bad_lines = 0

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    def fields(self) -> tuple[str, ...]:
        return self._fields

    def open(self) -> None:
        """Open without blocking or becoming the controlling tty; discard stale input."""
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise SensorError(f"sensor {self._name!r}: cannot open: {exc.strerror}") from exc
        try:
            if os.isatty(fd):
                self._configure_tty(fd)
        except (OSError, termios.error) as exc:
            os.close(fd)
            raise SensorError(f"sensor {self._name!r}: cannot configure the tty: {exc}") from exc
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._buffer = b""

    def _configure_tty(self, fd: int) -> None:
        """Raw 8N1 at the configured baud; lines buffered before open are old, so dropped."""
        tty.setraw(fd)
        attributes = termios.tcgetattr(fd)
        attributes[2] |= termios.CLOCAL | termios.CREAD  # cflag: ignore modem lines, receive
        attributes[4] = attributes[5] = BAUD_RATES[self._baud]  # ispeed, ospeed
        termios.tcsetattr(fd, termios.TCSANOW, attributes)
        termios.tcflush(fd, termios.TCIFLUSH)

    def read(self, timeout_s: float) -> tuple[float, ...] | None:
        """The next well-formed line's values, or None when none arrives within timeout_s.

        Raises SensorError when the device reports an error or hangs up (end of file).
        """
        if self._fd is None:
            raise SensorError(f"sensor {self._name!r} is not open")
        deadline = time.monotonic() + timeout_s
        while True:
            values = self._next_buffered()
            if values is not None:
                return values
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(remaining * 1000.0):
                return None
            self._fill()

    def _fill(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            raise SensorError(f"sensor {self._name!r}: read failed: {exc.strerror}") from exc
        if not chunk:
            raise SensorError(f"sensor {self._name!r}: the device closed (unplugged?)")
        self._buffer += chunk

    def _next_buffered(self) -> tuple[float, ...] | None:
        """Parse complete lines from the buffer until one yields a sample."""
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if not newline:
                if len(self._buffer) > _MAX_LINE:
                    self.bad_lines += 1
                    self._buffer = b""
                return None
            self._buffer = rest
            values = self._parse(line)
            if values is not None:
                return values

    def _parse(self, line: bytes) -> tuple[float, ...] | None:
        text = line.strip()
        if not text:
            return None  # blank lines separate records on some devices
        parts = _SEPARATORS.split(text)
        try:
            values = tuple(float(part) for part in parts)
        except ValueError:
            values = ()
        if len(values) != len(self._fields):
            self.bad_lines += 1
            return None
        return values

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


def _parse_baud(sensor: str, value: int | str) -> int:
    try:
        baud = int(value)
    except (TypeError, ValueError):
        baud = -1
    if isinstance(value, bool) or baud not in BAUD_RATES:
        raise SensorError(f"sensor {sensor!r}: baud must be one of "
                          f"{', '.join(map(str, sorted(BAUD_RATES)))}, got {value!r}")
    return baud
