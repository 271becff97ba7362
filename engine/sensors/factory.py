"""The sensor factory: a sensor URI (and keyword settings) to an unopened sensor.

It only parses and validates, never opens a device, so a controller or a rig loader
can reject a bad configuration before any process starts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from engine.sensors.base import ACCEPTED, SensorError, SensorSource, check_keys
from engine.sensors.serial_lines import SerialLineSensor
from engine.sensors.sidecar import check_sensor_name
from engine.sensors.synthetic_imu import SyntheticIMU
from engine.specs import SensorSpec


def create_sensor(uri: str, **settings: Any) -> SensorSource:
    """Build the (unopened) sensor for `uri`; keyword settings override URI options.

    "imu:synthetic[?rate=HZ]" or "serial:<path>?baud=115200&fields=ax,ay,az[&rate=HZ]".
    """
    text = uri.strip() if isinstance(uri, str) else ""
    kind, colon, rest = text.partition(":")
    target, _, query = rest.partition("?")
    options: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    options.update(settings)
    if colon and kind == "imu" and target == "synthetic":
        check_keys(text, options, ("rate",))
        return SyntheticIMU(rate_hz=options.get("rate", 100.0))
    if colon and kind == "serial" and target:
        check_keys(text, options, ("baud", "fields", "rate"))
        if "fields" not in options:
            raise SensorError(f"sensor {text!r}: needs fields=name1,name2,... (one per value)")
        return SerialLineSensor(
            target,
            fields=options["fields"],
            baud=options.get("baud", 115200),
            rate_hz=options.get("rate", 0.0),
        )
    raise SensorError(f"unknown sensor {uri!r}: {ACCEPTED}")


def validate_sensor(spec: SensorSpec) -> None:
    """Raise SensorError / ValueError naming the problem; opens nothing."""
    check_sensor_name(spec.name)
    create_sensor(spec.source, **spec.settings)
