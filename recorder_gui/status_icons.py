"""Battery and network indicators for the status bar, drawn with QPainter (no image files).

They follow the engine's device events (about once a second), so the operator sees whether
the machine can keep recording even while the health panel is hidden behind another tab.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStyle, QWidget

from engine.wire.events import Device
from recorder_gui import device_status as ds
from recorder_gui.engine_link import EngineLink

ICON_HEIGHT = 16
GOOD = QColor("#2e9d3a")
IDLE = QColor("#9e9e9e")
SIGNAL_BARS_DBM = (-80, -70, -60)  # a Wi-Fi signal above each of these lights one more bar


def _canvas(width: int, ratio: float) -> QPixmap:
    pixmap = QPixmap(round(width * ratio), round(ICON_HEIGHT * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    return pixmap


def battery_pixmap(battery: dict[str, Any] | None, ratio: float = 1.0) -> QPixmap:
    """A battery filled to its charge, coloured by level, with a bolt while charging; an
    empty crossed-out outline when there is none."""
    pixmap = _canvas(24, ratio)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    outline = IDLE if battery is None else QColor("#606060")
    painter.setPen(QPen(outline, 1.5))
    body = QRectF(1.5, 3.5, 18, 10)
    painter.drawRect(body)
    painter.fillRect(QRectF(20, 6.5, 2.5, 4), outline)
    if battery is None:
        painter.drawLine(QPointF(3, 14), QPointF(18, 3))
    else:
        level = max(0.0, min(100.0, float(battery["percent"]))) / 100
        colour = ds.battery_colour(battery) or GOOD
        painter.fillRect(QRectF(3, 5, 15 * level, 7), colour)
        if battery["is_charging"]:
            bolt = QPolygonF([QPointF(x, y) for x, y in
                              ((12, 3), (7, 9), (10, 9), (8, 14), (14, 7.5), (11, 7.5))])
            painter.setPen(QPen(QColor("#202020"), 0.8))
            painter.setBrush(QColor("#ffd600"))
            painter.drawPolygon(bolt)
    painter.end()
    return pixmap


def signal_bars(network: dict[str, Any]) -> int:
    """How many of four bars to light: none offline, two without internet, and online all
    four, or the Wi-Fi signal's strength where it is known."""
    if network["status"] == "offline":
        return 0
    if network["status"] != "online":
        return 2
    wifi = network.get("wifi") or {}
    if wifi.get("signal_dbm") is None:
        return 4
    return 1 + sum(wifi["signal_dbm"] > limit for limit in SIGNAL_BARS_DBM)


def network_pixmap(network: dict[str, Any] | None, ratio: float = 1.0) -> QPixmap:
    """Four rising bars, lit by connectivity; a red cross when offline."""
    pixmap = _canvas(18, ratio)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    lit = 0 if network is None else signal_bars(network)
    colour = GOOD if network is None or network["status"] == "online" else ds.WARNING
    for bar in range(4):
        height = 4 + 3 * bar
        painter.fillRect(QRectF(1 + 4 * bar, 15 - height, 3, height),
                         colour if bar < lit else IDLE)
    if network is not None and network["status"] == "offline":
        painter.setPen(QPen(ds.ALARM, 2))
        painter.drawLine(QPointF(2, 2), QPointF(9, 9))
        painter.drawLine(QPointF(9, 2), QPointF(2, 9))
    painter.end()
    return pixmap


class IconLabel(QWidget):
    """An icon and a short text side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)  # names come from the device
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(4)
        layout.addWidget(self.icon)
        layout.addWidget(self.text)

    def show_state(self, pixmap: QPixmap, text: str, tooltip: str,
                   colour: QColor | None = None) -> None:
        self.icon.setPixmap(pixmap)
        self.text.setText(text)
        self.setToolTip(tooltip)
        palette = QPalette()  # empty: the normal colours again
        if colour is not None:
            palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.text.setPalette(palette)


class DeviceIndicators(QWidget):
    """Battery, network and (only while there are any) the device's warnings."""

    def __init__(self, link: EngineLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.alert = IconLabel()
        self.battery = IconLabel()
        self.network = IconLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for indicator in (self.alert, self.battery, self.network):
            layout.addWidget(indicator)
        self.clear(ds.NOT_REPORTED)
        link.device.connect(self.update_device)
        link.disconnected.connect(self._on_disconnected)

    def _on_disconnected(self, reason: str) -> None:
        self.clear(f"lost the engine: {reason}")

    def clear(self, why: str) -> None:
        """Unknown state: "—" rather than a stale reading."""
        ratio = self.devicePixelRatioF()
        self.battery.show_state(battery_pixmap(None, ratio), "battery —", why)
        self.network.show_state(network_pixmap(None, ratio), "network —", why)
        self.alert.hide()

    def update_device(self, device: Device) -> None:
        ratio = self.devicePixelRatioF()
        battery = device.battery
        short = "no battery" if battery is None else f"{battery['percent']:.0f} %"
        self.battery.show_state(
            battery_pixmap(battery, ratio), short,
            f"{ds.battery_text(battery)}\n{ds.battery_tooltip(battery)}",
            ds.battery_colour(battery))
        network = device.network
        self.network.show_state(
            network_pixmap(network, ratio), ds.network_word(network),
            f"{ds.network_text(network)}\n{ds.network_tooltip(network)}",
            ds.network_colour(network))
        self._show_alerts(ds.alerts(device))

    def _show_alerts(self, alerts: list[tuple[str, QColor]]) -> None:
        if not alerts:
            self.alert.hide()
            return
        first, colour = alerts[0]
        more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
        kind = (QStyle.StandardPixmap.SP_MessageBoxCritical if colour == ds.ALARM
                else QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon = self.style().standardIcon(kind).pixmap(ICON_HEIGHT, ICON_HEIGHT)
        self.alert.show_state(icon, first + more, "\n".join(text for text, _ in alerts), colour)
        self.alert.show()
