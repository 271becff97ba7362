"""Find the cameras this machine offers, for the "add camera" list of the GUI and CLI.

Each /dev/video* node is asked through V4L2 (v4l2_device.py) in a daemon thread with a
deadline: a wedged driver can block an open() for a long time, and discovery must never
hang its caller. A node that does not answer in time (unplugged, wedged) is skipped, and
so is one that captures no video (a UVC camera's metadata node). Probing starts no
stream, so a camera in use elsewhere is not disturbed.

Each USB camera is listed under udev's stable name (/dev/v4l/by-id/..., or by-path for
a camera with no serial number, whose by-id name two such cameras would share), with
its formats, sizes, rates and controls, and a warning where cameras share a USB bus.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.sources.aravis_source import list_genicam_cameras
from engine.sources.capture_format import DECODABLE, choose_format, format_modes
from engine.sources.onvif_discovery import PROBE_TIMEOUT_S as NETWORK_PROBE_TIMEOUT_S
from engine.sources.onvif_discovery import NetworkProbe
from engine.sources.pylon_source import list_pylon_cameras
from engine.sources.v4l2_device import Control, ControlFlag, Driver, Ioctls, V4L2Device

PROBE_TIMEOUT_S = 2.0  # for all nodes together
SYNTHETIC_ENTRY = {
    "source": "synthetic", "kind": "synthetic", "description": "built-in test pattern",
}


def list_cameras(
    timeout_s: float = PROBE_TIMEOUT_S, network_timeout_s: float = NETWORK_PROBE_TIMEOUT_S
) -> list[dict[str, Any]]:
    """The synthetic source plus every USB camera (usb_cameras: its stable name, modes and
    controls), the Basler cameras pylon sees (with pypylon installed) and the GenICam
    cameras Aravis sees (with Aravis and PyGObject), then the ONVIF
    cameras on the local network (probed meanwhile; 0 s skips them)."""
    network = NetworkProbe(network_timeout_s)
    found: list[dict[str, Any]] = [dict(SYNTHETIC_ENTRY)]
    found.extend(usb_cameras(timeout_s))
    found.extend({"source": camera["source"], "kind": "pylon",
                  "description": f"{camera['vendor']} {camera['model']} "
                                 f"(serial {camera['serial']})"}
                 for camera in list_pylon_cameras())
    found.extend({"source": camera["source"], "kind": "genicam",
                  "description": f"{camera['vendor']} {camera['model']} "
                                 f"(serial {camera['serial']})"}
                 for camera in list_genicam_cameras())
    return found + network.result()


def usb_cameras(
    timeout_s: float = PROBE_TIMEOUT_S,
    dev: Path = Path("/dev"),
    sysfs: Path = Path("/sys"),
    open_driver: Callable[[str], Driver] | None = None,
) -> list[dict[str, Any]]:
    """Every V4L2 node that captures video, under its stable name, with its modes and
    controls, and warnings where several share a USB bus. `dev`, `sysfs` and
    `open_driver` are the machine's unless a test gives its own."""
    nodes = sorted(dev.glob("video*"), key=_node_number)
    if not nodes:
        return []
    opener = open_driver or Ioctls
    results: dict[str, dict[str, Any]] = {}
    threads = [threading.Thread(target=_probe, args=(str(node), opener, results), daemon=True)
               for node in nodes]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    links = stable_links(dev / "v4l")
    cameras = []
    for node in nodes:
        entry = results.get(str(node))
        if entry is None:
            continue
        usb = usb_device(sysfs, node.name)
        names = links.get(node.name, {})
        entry.update({"description": _device_name(sysfs, node.name) or str(node),
                      **names, "usb_bus": usb.bus if usb else None})
        serial_less = usb is not None and not usb.serial
        entry["source"] = (names.get("by_path") if serial_less else None) \
            or names.get("by_id") or names.get("by_path") or str(node)
        cameras.append(entry)
    for warning, sharing in shared_bus_warnings(cameras):
        for entry in sharing:
            entry["warnings"].append(warning)
    return cameras


def _probe(path: str, opener: Callable[[str], Driver], results: dict[str, dict[str, Any]]
           ) -> None:
    """Ask one node what it offers; record it if it captures video."""
    try:
        with V4L2Device.open(path, opener) as device:
            if device.capture_capable:
                results[path] = describe_device(path, device)
    except OSError:
        pass  # gone, busy in a way that refuses even an open, or not V4L2


def describe_device(node: str, device: V4L2Device) -> dict[str, Any]:
    """A camera's discovery entry: its formats with their (width, height, fps) modes, the
    mode "auto" would pick at the largest size, and every control as the driver gives it."""
    modes = device.modes()
    formats = []
    for answer in device.formats():
        own = [mode for mode in modes if mode.fourcc == answer.fourcc]
        formats.append({"fourcc": answer.fourcc, "description": answer.description,
                        "readable": answer.fourcc in DECODABLE,
                        "modes": [[m.width, m.height, m.fps] for m in own]})
    readable = format_modes(modes)
    entry: dict[str, Any] = {"source": node, "kind": "device", "node": node}
    if readable:  # the largest size at its full rate: what the camera does best
        width, height, fps = max(readable, key=lambda m: (m[0] * m[1], m[2]))
        entry.update(width=width, height=height, fps=fps,
                     pixel_format=choose_format(modes, width, height, fps))
    entry["formats"] = formats
    entry["controls"] = [_control_entry(control) for control in device.controls().values()]
    entry["warnings"] = []
    return entry


def _control_entry(control: Control) -> dict[str, Any]:
    flags = [flag.name.lower() for flag in ControlFlag if control.flags & flag and flag.name]
    entry = {"name": control.name, "label": control.label, "kind": control.kind,
             "minimum": control.minimum, "maximum": control.maximum, "step": control.step,
             "default": control.shown(control.default), "value": control.shown(control.value),
             "flags": flags}
    if control.menu:
        entry["menu"] = {str(index): text for index, text in control.menu.items()}
    return entry


def stable_links(v4l: Path) -> dict[str, dict[str, str]]:
    """udev's stable names of each node ("video0" -> {"by_id": ..., "by_path": ...})."""
    names: dict[str, dict[str, str]] = {}
    for kind in ("by-id", "by-path"):
        folder = v4l / kind
        if not folder.is_dir():
            continue
        for link in sorted(folder.iterdir()):
            node = link.resolve().name
            names.setdefault(node, {}).setdefault(kind.replace("-", "_"), str(link))
    return names


@dataclass(frozen=True)
class UsbDevice:
    bus: int
    serial: str


def usb_device(sysfs: Path, node: str) -> UsbDevice | None:
    """The USB device a node belongs to, from sysfs (the node's device is a USB
    interface; the device above it has busnum and, when it has one, serial)."""
    try:
        folder = (sysfs / "class" / "video4linux" / node / "device").resolve(strict=True)
    except OSError:
        return None
    for parent in (folder, *folder.parents):
        busnum = parent / "busnum"
        if busnum.is_file():
            serial = parent / "serial"
            try:
                return UsbDevice(int(busnum.read_text()),
                                 serial.read_text().strip() if serial.is_file() else "")
            except (OSError, ValueError):
                return None
    return None


def shared_bus_warnings(cameras: list[dict[str, Any]]
                        ) -> list[tuple[str, list[dict[str, Any]]]]:
    """A warning for each USB bus that several cameras share, with those cameras: a USB 2
    bus carries about 35 MB/s, which two large MJPG or YUYV streams can overrun."""
    by_bus: dict[int, list[dict[str, Any]]] = {}
    for camera in cameras:
        if camera.get("usb_bus") is not None:
            by_bus.setdefault(camera["usb_bus"], []).append(camera)
    warnings = []
    for bus, sharing in sorted(by_bus.items()):
        if len(sharing) < 2:
            continue
        names = [f"{c['description']} ({c['node']})" for c in sharing]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        every = "both" if len(sharing) == 2 else "all"
        warnings.append((f"{listed} share USB bus {bus}: at high resolutions they may not "
                         f"{every} get full rate", sharing))
    return warnings


def _device_name(sysfs: Path, node: str) -> str:
    """The driver's name for the node (e.g. the USB product), or "" without one."""
    try:
        return (sysfs / "class" / "video4linux" / node / "name").read_text().strip()
    except OSError:
        return ""


def _node_number(node: Path) -> int:
    digits = re.search(r"\d+$", node.name)
    return int(digits.group()) if digits else -1
