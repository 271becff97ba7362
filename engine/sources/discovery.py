"""Find the cameras this machine offers, for the "add camera" list of the GUI and CLI.

Each /dev/video* node is probed in a daemon thread with a deadline: a wedged driver
can block an open() for a long time, and discovery must never hang its caller. A
node that does not open in time (metadata-only, unplugged, wedged) is skipped. Probing
only opens a node; it starts no stream, so a camera in use elsewhere is not disturbed.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from engine.sources.onvif_discovery import PROBE_TIMEOUT_S as NETWORK_PROBE_TIMEOUT_S
from engine.sources.onvif_discovery import NetworkProbe

PROBE_TIMEOUT_S = 2.0  # for all nodes together
SYNTHETIC_ENTRY = {
    "source": "synthetic", "kind": "synthetic", "description": "built-in test pattern",
}


def list_cameras(
    timeout_s: float = PROBE_TIMEOUT_S, network_timeout_s: float = NETWORK_PROBE_TIMEOUT_S
) -> list[dict[str, Any]]:
    """The synthetic source plus every V4L2 node that opens, with its default size and fps,
    then the ONVIF cameras on the local network (probed meanwhile; 0 s skips them)."""
    network = NetworkProbe(network_timeout_s)
    found: list[dict[str, Any]] = [dict(SYNTHETIC_ENTRY)]
    nodes = sorted(Path("/dev").glob("video*"), key=_node_number)
    if not nodes:
        return found + network.result()
    results: dict[str, dict[str, Any]] = {}
    threads = [
        threading.Thread(target=_probe, args=(str(node), results), daemon=True) for node in nodes
    ]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    found.extend(results[str(node)] for node in nodes if str(node) in results)
    return found + network.result()


def _probe(path: str, results: dict[str, dict[str, Any]]) -> None:
    """Open one node, read its default mode, and release it; record it if it opened."""
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
    try:
        if not cap.isOpened():
            return
        results[path] = {
            "source": path,
            "kind": "device",
            "description": _device_name(path),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "fps": float(cap.get(cv2.CAP_PROP_FPS)),
        }
    finally:
        cap.release()


def _device_name(path: str) -> str:
    """The driver's name for the node (e.g. the USB product), or the path itself."""
    sysfs = Path("/sys/class/video4linux") / Path(path).name / "name"
    try:
        return sysfs.read_text().strip() or path
    except OSError:
        return path


def _node_number(node: Path) -> int:
    digits = re.search(r"\d+$", node.name)
    return int(digits.group()) if digits else -1
