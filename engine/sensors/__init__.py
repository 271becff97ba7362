"""Sensor data streams (an IMU, a line-based serial device) recorded next to the cameras.

- base: the SensorSource protocol, SensorError and the option parsers.
- factory: create_sensor (URI -> unopened sensor) and validate_sensor (a rig's SensorSpec).
- synthetic_imu, serial_lines: the sensors.
- sidecar: the CSV a sensor writes into a recording folder.

The sensor process is engine/workers/sensor.py; the CSV as an MKV text track is
engine/recording/sensor_track.py.
"""

from engine.sensors.base import SensorError, SensorSource
from engine.sensors.factory import create_sensor

__all__ = ["SensorError", "SensorSource", "create_sensor"]
