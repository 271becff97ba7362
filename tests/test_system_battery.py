"""Battery HAT (INA219 over smbus2) against a fake bus with a register model of the chip."""

from __future__ import annotations

import errno
import logging

import pytest

from engine.system.battery import CALIBRATION, BatteryMonitor

BUS_MISSING = FileNotFoundError(errno.ENOENT, "No such file or directory: '/dev/i2c-1'")


class FakeIna219Bus:
    """An I2C bus with an INA219 at `address`, modelled as the datasheet describes it.

    The test sets the physical pack voltage and current; the shunt, current and power
    registers follow from them and from the calibration register (which a reset clears),
    so wrong calibration gives wrong figures, as on the real chip.
    """

    def __init__(self, voltage: float = 7.4, current: float = -0.5, address: int = 0x42):
        self.voltage, self.current, self.address = voltage, current, address
        self.registers = {0x00: 0x399F, 0x05: 0}  # power-on defaults
        self.present = True  # False: nothing acknowledges the address
        self.failing = False  # True: every transfer fails as a flaky bus does
        self.ignores_config = False  # True: another chip that does not keep what is written
        self.closed = False

    def _check(self, address: int) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "bus closed")
        if not self.present or address != self.address:
            raise OSError(errno.ENXIO, "No such device or address")
        if self.failing:
            raise OSError(errno.EIO, "Input/output error")

    def _value(self, register: int) -> int:
        shunt = round(self.current * 0.01 / 10e-6)  # 10 uV per bit across 0.01 ohm
        current = shunt * self.registers[0x05] // 4096
        bus = round(self.voltage / 0.004)
        if register == 0x01:
            return shunt & 0xFFFF
        if register == 0x02:
            return (bus << 3) | 0b10  # conversion-ready flag
        if register == 0x03:
            return abs(current) * bus // 5000
        if register == 0x04:
            return current & 0xFFFF
        return self.registers.get(register, 0)

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
        self._check(address)
        value = self._value(register)
        return [value >> 8, value & 0xFF][:length]

    def write_i2c_block_data(self, address: int, register: int, data: list[int]) -> None:
        self._check(address)
        if not (self.ignores_config and register == 0x00):
            self.registers[register] = (data[0] << 8) | data[1]

    def close(self) -> None:
        self.closed = True

    def reset(self) -> None:
        """A brown-out: the chip forgets its calibration."""
        self.registers = {0x00: 0x399F, 0x05: 0}


class Factory:
    """smbus_factory: opens the bus as /dev/i2c-N would; counts the attempts."""

    def __init__(self, chip: FakeIna219Bus | None) -> None:
        self.chip = chip  # None: no I2C bus at all
        self.opened = 0

    def __call__(self, bus: int) -> FakeIna219Bus:
        self.opened += 1
        if self.chip is None:
            raise BUS_MISSING
        self.chip.closed = False
        return self.chip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def monitor(factory: Factory, clock: Clock | None = None) -> BatteryMonitor:
    return BatteryMonitor(smbus_factory=factory, clock=clock or Clock())


def test_reads_voltage_current_power_and_percent() -> None:
    chip = FakeIna219Bus(voltage=7.2, current=-0.8)
    battery = monitor(Factory(chip))
    reading = battery.read()
    assert reading is not None and battery.available
    assert chip.registers[0x05] == CALIBRATION
    assert reading.voltage_v == pytest.approx(7.2, abs=0.004)
    assert reading.percent == pytest.approx(50.0, abs=0.2)
    assert reading.current_a == pytest.approx(-0.8, abs=0.002)
    assert reading.power_w == pytest.approx(7.2 * 0.8, rel=0.01)
    assert reading.is_charging is False
    assert set(reading.as_dict()) == {"percent", "voltage_v", "current_a", "power_w",
                                      "is_charging"}

    chip.current, chip.voltage = 1.25, 8.3
    reading = battery.read()
    assert reading is not None and reading.is_charging
    assert reading.current_a == pytest.approx(1.25, abs=0.002)


@pytest.mark.parametrize(("voltage", "percent"), [(5.4, 0.0), (6.0, 0.0), (8.4, 100.0),
                                                  (8.9, 100.0)])
def test_percent_is_clamped(voltage: float, percent: float) -> None:
    reading = monitor(Factory(FakeIna219Bus(voltage=voltage))).read()
    assert reading is not None and reading.percent == pytest.approx(percent, abs=0.2)


def test_no_bus_is_no_battery_and_is_probed_again_every_30_s() -> None:
    factory, clock = Factory(None), Clock()
    battery = monitor(factory, clock)
    assert battery.read() is None and not battery.available
    clock.now += 29.9
    assert battery.read() is None
    assert factory.opened == 1  # not hammering a bus that is not there
    clock.now += 0.1
    assert battery.read() is None
    assert factory.opened == 2


def test_a_hat_attached_later_is_found_at_the_next_probe() -> None:
    factory, clock = Factory(None), Clock()
    battery = monitor(factory, clock)
    assert battery.read() is None
    factory.chip = FakeIna219Bus(voltage=7.8)
    clock.now += 10
    assert battery.read() is None  # still waiting for the re-probe
    clock.now += 20
    reading = battery.read()
    assert reading is not None and reading.voltage_v == pytest.approx(7.8, abs=0.004)


def test_bus_without_the_chip_is_no_battery_and_the_bus_is_closed() -> None:
    chip = FakeIna219Bus()
    chip.present = False
    battery = monitor(Factory(chip))
    assert battery.read() is None
    assert chip.closed


def test_another_device_at_the_address_is_not_taken_for_a_battery() -> None:
    chip = FakeIna219Bus()
    chip.ignores_config = True
    assert monitor(Factory(chip)).read() is None


def test_read_errors_mid_run_become_no_battery_and_it_comes_back(caplog) -> None:
    chip, clock = FakeIna219Bus(), Clock()
    factory = Factory(chip)
    battery = monitor(factory, clock)
    assert battery.read() is not None
    chip.failing = True
    with caplog.at_level(logging.INFO, logger="engine.system.battery"):
        assert battery.read() is None  # no exception reaches the caller
    assert not battery.available and chip.closed
    assert "battery read failed" in caplog.text and "Input/output error" in caplog.text
    chip.failing = False
    assert battery.read() is not None  # a glitch: looked for again at once

    chip.failing = True
    assert battery.read() is None  # the read fails ...
    assert battery.read() is None  # ... and so does the immediate probe
    opened = factory.opened
    chip.failing = False
    clock.now += 29
    assert battery.read() is None and factory.opened == opened
    clock.now += 1
    assert battery.read() is not None


def test_calibration_lost_in_a_chip_reset_is_restored() -> None:
    chip = FakeIna219Bus(voltage=7.0, current=-1.0)
    battery = monitor(Factory(chip))
    assert battery.read() is not None
    chip.reset()
    reading = battery.read()
    assert reading is not None
    assert reading.current_a == pytest.approx(-1.0, abs=0.002)
    assert reading.power_w == pytest.approx(7.0, rel=0.01)


def test_a_missing_bus_is_logged_once_not_every_probe(caplog) -> None:
    clock = Clock()
    battery = monitor(Factory(None), clock)
    with caplog.at_level(logging.INFO, logger="engine.system.battery"):
        for _ in range(5):
            assert battery.read() is None
            clock.now += 30
    assert caplog.text.count("no battery HAT") == 1


def test_close_releases_the_bus() -> None:
    chip = FakeIna219Bus()
    battery = monitor(Factory(chip))
    assert battery.read() is not None
    battery.close()
    assert chip.closed and not battery.available
