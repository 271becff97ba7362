"""Device status: what the operator needs to know to trust that recording can go on.

One concept per module, all usable without the engine service or a display:

- `cpu`, `memory`, `storage`: host metrics (CPU from deltas between samples, write rate of
  the output disk from the measured fall of its free space).
- `disk_guard`: the low-disk thresholds that refuse a start and stop a recording cleanly.
- `network`, `wifi`: offline / network-only / online with hysteresis and a growing backoff.
- `battery`: an INA219 UPS HAT over smbus2; absent hardware is "no battery", probed again later.
- `button`: short / double / long press classification and an optional libgpiod line.
- `device_status`: the once-a-second snapshot that aggregates all of the above.
"""
