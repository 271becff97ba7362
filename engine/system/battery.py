"""Battery of a Waveshare UPS HAT (B): an INA219 current / voltage monitor on I2C (smbus2).

The INA219 is set up as Waveshare's own example does (16 V bus range, /2 gain on the 0.01 ohm
shunt, 32-sample averaging, continuous): 0.1524 mA and 3.048 mW per bit. Charge is estimated
from the load voltage of the 2S Li-ion pack, 6.0 V = 0 % to 8.4 V = 100 %. The current is
positive while the pack is charging and negative while it feeds the machine.

No I2C bus, no chip at the address, or a read error: "no battery" (None), with the reason
logged; the hardware is looked for again every `reprobe_s`, so a HAT attached later is found.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

CALIBRATION = 26868  # 0.04096 / (current LSB * shunt), as Waveshare rounds it
CURRENT_LSB_A = 0.1524e-3
POWER_LSB_W = 0.003048  # 20 * current LSB
# 16 V range (bit 13 = 0), gain /2 (bits 11-12 = 1), bus and shunt ADC 12 bit x 32 samples
# (0xD in bits 7-10 and 3-6), shunt and bus continuous (bits 0-2 = 7).
CONFIG = (0x0 << 13) | (0x1 << 11) | (0xD << 7) | (0xD << 3) | 0x7


class SMBusLike(Protocol):
    """The part of smbus2.SMBus used here."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...
    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...
    def close(self) -> None: ...


def _default_smbus(bus: int) -> SMBusLike:
    from smbus2 import SMBus  # imported late: only machines that look for a HAT need it

    return SMBus(bus)


def _signed(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


class Ina219:
    """Register access to one INA219; every method raises OSError on a bus error."""

    def __init__(self, bus: SMBusLike, address: int) -> None:
        self._bus = bus
        self._address = address

    def _read(self, register: int) -> int:
        high, low = self._bus.read_i2c_block_data(self._address, register, 2)
        return (high << 8) | low

    def _write(self, register: int, value: int) -> None:
        self._bus.write_i2c_block_data(self._address, register, [value >> 8, value & 0xFF])

    def configure(self) -> None:
        """Calibrate and configure; OSError if what reads back is not what was written."""
        self._write(REG_CALIBRATION, CALIBRATION)
        self._write(REG_CONFIG, CONFIG)
        if self._read(REG_CONFIG) != CONFIG:
            raise OSError(f"the device at {self._address:#04x} does not behave like an INA219")

    def read(self) -> tuple[float, float, float]:
        """(bus voltage V, current A, power W).

        Calibration is written again first: after a brown-out the chip resets it to 0 and
        would report no current and no power.
        """
        self._write(REG_CALIBRATION, CALIBRATION)
        voltage = (self._read(REG_BUS_VOLTAGE) >> 3) * 0.004
        current = _signed(self._read(REG_CURRENT)) * CURRENT_LSB_A
        power = self._read(REG_POWER) * POWER_LSB_W
        return voltage, current, power


@dataclass(frozen=True)
class BatteryReading:
    """One reading; `as_dict()` is the status-file schema's "battery" object."""

    percent: float
    voltage_v: float
    current_a: float
    power_w: float
    is_charging: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatteryMonitor:
    """Reads the HAT when asked (`read()`), and never raises.

    smbus_factory(bus_number) opens the bus (smbus2.SMBus by default); tests pass a fake.
    """

    def __init__(
        self,
        bus: int = 1,
        address: int = 0x42,
        min_voltage: float = 6.0,
        max_voltage: float = 8.4,
        reprobe_s: float = 30.0,
        smbus_factory: Callable[[int], SMBusLike] = _default_smbus,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus, self.address = bus, address
        self.min_voltage, self.max_voltage = min_voltage, max_voltage
        self.reprobe_s = reprobe_s
        self._factory = smbus_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._smbus: SMBusLike | None = None
        self._chip: Ina219 | None = None
        self._next_probe = float("-inf")
        self._last_reason: str | None = None

    @property
    def available(self) -> bool:
        """True while a battery chip is open and answering."""
        return self._chip is not None

    def percent_of(self, voltage: float) -> float:
        """Charge estimate from the pack voltage, clamped to 0..100."""
        span = self.max_voltage - self.min_voltage
        return round(min(max((voltage - self.min_voltage) / span * 100.0, 0.0), 100.0), 1)

    def read(self) -> BatteryReading | None:
        """The battery now, or None for "no battery" (absent hardware or a failed read)."""
        with self._lock:
            if self._chip is None and not self._probe():
                return None
            assert self._chip is not None
            try:
                voltage, current, power = self._chip.read()
            except Exception as exc:  # OSError from the bus; anything else from a broken driver
                # Look again on the next call: a glitch should not hide the battery for long,
                # and a HAT that is really gone fails that probe and waits reprobe_s.
                self._drop(f"battery read failed: {exc}", next_probe=self._clock())
                return None
        return BatteryReading(percent=self.percent_of(voltage), voltage_v=round(voltage, 3),
                              current_a=round(current, 4), power_w=round(power, 3),
                              is_charging=current > 0)

    def close(self) -> None:
        """Release the I2C bus."""
        with self._lock:
            self._drop(None, next_probe=float("-inf"))

    def _probe(self) -> bool:
        now = self._clock()
        if now < self._next_probe:
            return False
        try:
            self._smbus = self._factory(self.bus)
            chip = Ina219(self._smbus, self.address)
            chip.configure()
        except Exception as exc:  # OSError: no bus / no chip; never let the caller see it
            self._drop(f"no battery HAT on I2C bus {self.bus} at {self.address:#04x}: {exc}",
                       next_probe=now + self.reprobe_s)
            return False
        self._chip = chip
        self._last_reason = None
        log.info("battery HAT found on I2C bus %d at %#04x", self.bus, self.address)
        return True

    def _drop(self, reason: str | None, next_probe: float) -> None:
        """Forget the chip and close the bus; log a reason once, not every probe."""
        self._chip = None
        self._next_probe = next_probe
        if self._smbus is not None:
            with contextlib.suppress(OSError):
                self._smbus.close()
            self._smbus = None
        if reason is not None and reason != self._last_reason:
            log.info("%s", reason)
        if reason is not None:
            self._last_reason = reason
