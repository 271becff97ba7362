"""The engine's view of the workstation itself: device status, low-disk guard, record button.

Built from the rig's [device] table. The device monitor publishes a `Device` event
about once a second and keeps the JSON status file; the disk guard (applied to every take
by the capture group) refuses a recording that would fill the disk and ends one before it
does; the optional GPIO button maps its presses to the same commands a client sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.rig import DeviceOptions
from engine.system.button import ButtonPoller, Press, open_gpio_button, run_hook
from engine.system.device_monitor import DeviceMonitor
from engine.system.disk_guard import GB, DiskGuard
from engine.system.network import NetworkConfig, NetworkMonitor
from engine.wire.events import Device, Event

log = logging.getLogger(__name__)

STATUS_FILE_NAME = "device-status.json"


def existing_folder(path: Path) -> Path:
    """path, or its nearest existing parent: the disk a folder still to be made lands on."""
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class DeviceWatch:
    """Owns the device monitor, the disk guard and the button for one engine."""

    def __init__(
        self,
        options: DeviceOptions,
        output_dir: Callable[[], Path],
        engine_info: Callable[[], dict[str, Any]],
        publish: Callable[[Event], None],
        status_file: Path | None,
        on_press: Callable[[Press], None],
        idle: Callable[[], bool],
    ) -> None:
        self.options = options
        self.disk_guard = DiskGuard(options.disk_warn_below_gb * GB,
                                    options.disk_stop_below_gb * GB)
        targets = tuple((host, int(port)) for host, _, port in
                        (target.rpartition(":") for target in options.network_targets))
        self.network = NetworkMonitor(NetworkConfig(targets=targets))
        self.monitor = DeviceMonitor(
            lambda: existing_folder(output_dir()), engine_info,
            publish=lambda snapshot: publish(Device(**snapshot)),
            status_file=status_file, device_id=options.device_id or None,
            disk_guard=self.disk_guard, network=self.network,
        )
        self._on_press = on_press
        self._button: ButtonPoller | None = None
        if options.button_chip:
            self._button = open_gpio_button(options.button_chip, options.button_line,
                                            self._pressed, allow_double=idle)

    def start(self) -> None:
        self.monitor.start()
        if self._button is not None:
            self._button.start()

    def close(self) -> None:
        if self._button is not None:
            self._button.stop()
        self.monitor.close()

    def latest(self) -> dict[str, Any]:
        return self.monitor.latest()

    def _pressed(self, press: Press) -> None:
        if press is Press.LONG and self.options.network_setup_command:
            run_hook(self.options.network_setup_command)
            self.network.wake()
        self._on_press(press)
