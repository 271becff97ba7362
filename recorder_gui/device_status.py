"""How a device-status snapshot reads: the words and the warning level of each part.

The health panel and the status bar show the same snapshot (the engine's `device` event);
both take their wording and colours from here, so what is "low" in one is low in the other.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor

from engine.wire.events import Device
from recorder_gui.recording_panel import ALARM, WARNING

GB = 1_000_000_000
MB = 1_000_000
DISK_WARNING_BELOW = 5 * GB
DISK_ALARM_BELOW = 1 * GB
BATTERY_WARNING_BELOW = 20.0  # percent, while not charging
BATTERY_ALARM_BELOW = 10.0
ENGINE_LEVELS = {"warning": WARNING, "danger": ALARM}
NOT_REPORTED = "not reported by this engine yet"
NETWORK_WORDS = {"online": "online", "network-only": "network only", "offline": "offline"}


def worst(*colours: QColor | None) -> QColor | None:
    """The most urgent of some level colours (None: all fine)."""
    for level in (ALARM, WARNING):
        if level in colours:
            return level
    return None


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def format_bytes(count: float) -> str:
    if count >= 100 * GB:
        return f"{count / GB:.0f} GB"
    if count >= GB:
        return f"{count / GB:.1f} GB"
    return f"{count / MB:.0f} MB"


# --- CPU and memory -----------------------------------------------------------------------

def cpu_text(cpu: dict[str, Any]) -> str:
    """Overall use, the range over the cores (one busy core hides in an average), and the
    temperature where the OS reports one."""
    parts = [f"{cpu['usage_percent']:.0f} %"]
    cores = cpu.get("per_core_percent") or []
    if len(cores) > 1:
        parts.append(f"{len(cores)} cores {min(cores):.0f}–{max(cores):.0f} %")
    if cpu.get("temperature_c") is not None:
        parts.append(f"{cpu['temperature_c']:.0f} °C")
    return " · ".join(parts)


def cpu_tooltip(cpu: dict[str, Any]) -> str:
    cores = cpu.get("per_core_percent") or []
    return "\n".join(f"core {number}: {usage:.0f} %" for number, usage in enumerate(cores))


def memory_text(memory: dict[str, Any]) -> str:
    return (f"{memory['used_percent']:.0f} % · {format_bytes(memory['used_bytes'])} of "
            f"{format_bytes(memory['total_bytes'])}")


# --- storage -------------------------------------------------------------------------------

def storage_text(storage: dict[str, Any]) -> str:
    parts = [f"{format_bytes(storage['free_bytes'])} free",
             f"writing {storage['write_rate_bps'] / MB:.1f} MB/s"]
    if storage.get("seconds_to_full") is not None:
        parts.append(f"full in {format_duration(storage['seconds_to_full'])}")
    return " · ".join(parts)


def storage_tooltip(storage: dict[str, Any]) -> str:
    return (f"{storage['path']}\n{format_bytes(storage['used_bytes'])} used of "
            f"{format_bytes(storage['total_bytes'])}")


def storage_colour(storage: dict[str, Any]) -> QColor | None:
    """The engine's level (its thresholds are settings) or ours, whichever is worse."""
    free = storage["free_bytes"]
    ours = ALARM if free < DISK_ALARM_BELOW else WARNING if free < DISK_WARNING_BELOW else None
    return worst(ours, ENGINE_LEVELS.get(storage.get("level", "ok")))


# --- network -------------------------------------------------------------------------------

def network_word(network: dict[str, Any]) -> str:
    return NETWORK_WORDS.get(network["status"], str(network["status"]))


def network_text(network: dict[str, Any]) -> str:
    wifi = network.get("wifi")
    if not wifi:
        return network_word(network)
    signal = f" {wifi['signal_dbm']} dBm" if wifi.get("signal_dbm") is not None else ""
    return f"{network_word(network)} · Wi-Fi “{wifi['ssid']}”{signal}"


def network_tooltip(network: dict[str, Any]) -> str:
    lines = [f"{i['name']}: {', '.join(i['addresses']) or 'no address'}"
             for i in network.get("interfaces") or []]
    return "\n".join(lines) or "no network interface up"


def network_colour(network: dict[str, Any]) -> QColor | None:
    """Less than online is worth a look, never an alarm: recording needs no network."""
    return None if network["status"] == "online" else WARNING


# --- battery -------------------------------------------------------------------------------

def battery_text(battery: dict[str, Any] | None) -> str:
    if battery is None:
        return "no battery"
    state = "charging" if battery["is_charging"] else "on battery"
    return f"{battery['percent']:.0f} % · {battery['voltage_v']:.2f} V · {state}"


def battery_tooltip(battery: dict[str, Any] | None) -> str:
    if battery is None:
        return "no battery found (looked for again every 30 s)"
    return f"{battery['current_a']:+.2f} A, {battery['power_w']:.1f} W"


def battery_colour(battery: dict[str, Any] | None) -> QColor | None:
    if battery is None or battery["is_charging"]:
        return None
    percent = battery["percent"]
    if percent < BATTERY_ALARM_BELOW:
        return ALARM
    return WARNING if percent < BATTERY_WARNING_BELOW else None


# --- the device as a whole ------------------------------------------------------------------

def device_text(device: Device) -> str:
    parts = [device.device_id or "?", device.software_version or "?",
             f"up {format_duration(device.uptime_seconds or 0)}"]
    state = device.engine_state or "?"
    if device.recording.get("active"):
        state += f" ({format_duration(device.recording.get('duration_s') or 0)})"
    return " · ".join([*parts, state])


def device_tooltip(device: Device) -> str:
    recording = device.recording
    return f"recording {recording.get('id')}" if recording.get("active") else ""


def alerts(device: Device) -> list[tuple[str, QColor]]:
    """The device error (danger) and warnings, most urgent first, for the operator to see."""
    found = []
    if device.device_error:
        found.append((device.device_error, ALARM))
    elif not device.device_healthy:
        found.append(("device not healthy", ALARM))
    found += [(str(warning), WARNING) for warning in device.warnings]
    return found
