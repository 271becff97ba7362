"""Sensor data streams (an IMU, a line-based serial device) recorded next to the cameras.

- base: the SensorSource protocol, SensorError and create_sensor (URI -> sensor).
- synthetic_imu, serial_lines: the sensors.
- recorder: the sensor process, writing `<rec>/sensors/<name>.csv` while recording.
- track: the CSV as a text track of an MKV file, on the video's time line.

recorder and track are imported explicitly (they pull in numpy and PyAV).
"""

from engine.sensors.base import SensorError, SensorSource, create_sensor

__all__ = ["SensorError", "SensorSource", "create_sensor"]
