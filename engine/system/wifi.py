"""The Wi-Fi network name and signal, where the OS reports them; None otherwise, never an error.

/proc/net/wireless lists associated wireless interfaces with their signal level in dBm;
`iw dev IFACE link` (or NetworkManager's `nmcli`) names the network.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROC_WIRELESS = Path("/proc/net/wireless")
RunCommand = Callable[[list[str]], str | None]


def run_command(argv: list[str]) -> str | None:
    """stdout of a short system command, or None when it is missing, fails or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=2.0, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", argv[0], exc)
        return None
    return done.stdout if done.returncode == 0 else None


def wireless_levels(text: str) -> dict[str, int | None]:
    """Interface -> signal level in dBm from /proc/net/wireless text."""
    levels: dict[str, int | None] = {}
    for line in text.splitlines()[2:]:  # two header lines
        name, _, rest = line.partition(":")
        fields = rest.split()
        if not name.strip() or len(fields) < 3:
            continue
        try:
            level = int(float(fields[2].rstrip(".")))
        except ValueError:
            level = None
        # Drivers that report a relative quality give a positive "level"; that is not dBm,
        # and an unassociated interface reports a placeholder such as -256.
        plausible = level is not None and -150 < level < 0
        levels[name.strip()] = level if plausible else None
    return levels


def parse_iw_link(text: str) -> tuple[str | None, int | None]:
    """(ssid, signal dBm) from `iw dev IFACE link` output; (None, None) when not connected."""
    ssid = signal = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "SSID":
            ssid = value.strip()
        elif key == "signal":
            try:
                signal = int(float(value.split()[0]))
            except (ValueError, IndexError):
                signal = None
    return ssid, signal


def parse_nmcli_ssid(text: str) -> str | None:
    """The active network's name from `nmcli -t -f ACTIVE,SSID dev wifi` output."""
    for line in text.splitlines():
        active, _, ssid = line.partition(":")
        if active == "yes":
            return ssid.replace("\\:", ":")
    return None


def read_wifi(proc_wireless: Path = PROC_WIRELESS,
              run: RunCommand = run_command) -> dict[str, Any] | None:
    """{"ssid": str, "signal_dbm": int | None} for the connected Wi-Fi, or None.

    ssid is "" when the link is up but no tool here names the network.
    """
    try:
        levels = wireless_levels(proc_wireless.read_text())
    except (OSError, UnicodeDecodeError):
        return None
    for interface, level in levels.items():
        output = run(["iw", "dev", interface, "link"])
        if output is not None:
            ssid, signal = parse_iw_link(output)
            if ssid is None:
                continue  # "Not connected."
            return {"ssid": ssid, "signal_dbm": signal if signal is not None else level}
        output = run(["nmcli", "-t", "-f", "ACTIVE,SSID", "dev", "wifi"])
        if output is not None:
            ssid = parse_nmcli_ssid(output)
            if ssid is not None:
                return {"ssid": ssid, "signal_dbm": level}
        elif level is not None:  # no tool to name it, but the link has a signal
            return {"ssid": "", "signal_dbm": level}
    return None
