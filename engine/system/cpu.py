"""CPU usage between two samples, per core, and the CPU temperature where the OS reports it.

psutil's counters only grow; usage is the busy share of the time that passed between two
consecutive samples. Averages since boot hide a machine that has just become saturated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import psutil

log = logging.getLogger(__name__)

# Sensor groups that measure the CPU package, most specific first (Raspberry Pi, Intel, AMD).
_TEMPERATURE_SENSORS = ("cpu_thermal", "cpu-thermal", "coretemp", "k10temp", "zenpower",
                        "soc_thermal", "acpitz")
# guest time is already counted in user / nice on Linux.
_NOT_SUMMED = frozenset({"guest", "guest_nice"})
_IDLE = frozenset({"idle", "iowait"})


def _busy_and_total(times: Any) -> tuple[float, float]:
    fields = times._asdict()
    total = sum(value for name, value in fields.items() if name not in _NOT_SUMMED)
    idle = sum(value for name, value in fields.items() if name in _IDLE)
    return total - idle, total


def cpu_temperature(
    sensors: Callable[[], dict[str, list[Any]]] | None = None,
) -> float | None:
    """The CPU temperature in °C, or None where the OS has no such sensor (never raises)."""
    reader = sensors or getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        groups = reader()
    except (OSError, RuntimeError, ValueError) as exc:
        log.debug("cannot read temperatures: %s", exc)
        return None
    for name in _TEMPERATURE_SENSORS:
        for entry in groups.get(name, ()):
            if entry.current is not None:
                return float(entry.current)
    return None


class CpuMonitor:
    """Usage between consecutive `sample()` calls; the first covers the time since creation."""

    def __init__(
        self,
        cpu_times: Callable[[], Sequence[Any]] | None = None,
        temperature: Callable[[], float | None] = cpu_temperature,
    ) -> None:
        self._cpu_times = cpu_times or (lambda: psutil.cpu_times(percpu=True))
        self._temperature = temperature
        self._previous = [_busy_and_total(core) for core in self._cpu_times()]
        self._last_usage: tuple[float, list[float]] = (0.0, [0.0] * len(self._previous))

    def sample(self) -> dict[str, Any]:
        """{"usage_percent", "per_core_percent", "temperature_c"} since the previous sample."""
        current = [_busy_and_total(core) for core in self._cpu_times()]
        if len(current) != len(self._previous):  # a core went on- or offline
            self._previous = current
            return self._as_dict()
        per_core = []
        busy_sum = total_sum = 0.0
        for (busy0, total0), (busy1, total1) in zip(self._previous, current, strict=True):
            busy, total = max(busy1 - busy0, 0.0), total1 - total0
            per_core.append(_percent(busy, total))
            busy_sum += busy
            total_sum += max(total, 0.0)
        if total_sum > 0:  # two samples in the same clock tick keep the last figures
            self._last_usage = (_percent(busy_sum, total_sum), per_core)
            self._previous = current
        return self._as_dict()

    def _as_dict(self) -> dict[str, Any]:
        usage, per_core = self._last_usage
        return {"usage_percent": usage, "per_core_percent": list(per_core),
                "temperature_c": self._temperature()}


def _percent(part: float, whole: float) -> float:
    return round(min(max(100.0 * part / whole, 0.0), 100.0), 1) if whole > 0 else 0.0
