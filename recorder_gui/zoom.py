"""A zoomed view of one camera (double-click a tile): its frames at full resolution.

It shows the tile's own buffer (the tile keeps pulling the ring), so opening a zoom
costs no extra ring reads. The mouse wheel zooms; "Fit" returns to the window size.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from recorder_gui.tiles import DISPLAY_HZ, CameraTile


class _Canvas(QWidget):
    def __init__(self, tile: CameraTile, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tile = tile
        self.scale = 1.0

    def sizeHint(self) -> QSize:
        image = self.tile.image()
        if image is None:
            return QSize(640, 480)
        return QSize(int(image.width() * self.scale), int(image.height() * self.scale))

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(10, 10, 10))
        image = self.tile.image()
        if image is not None:
            size = self.sizeHint()
            painter.drawImage(QRect(0, 0, size.width(), size.height()), image)
        painter.end()


class ZoomDialog(QDialog):
    def __init__(self, tile: CameraTile, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{tile.camera_id} — zoom")
        tile.set_full_resolution(True)
        self.canvas = _Canvas(tile)
        self._scroll = QScrollArea()
        self._scroll.setWidget(self.canvas)
        self._scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._fit = QCheckBox("Fit")
        self._fit.setChecked(True)
        self._fit.toggled.connect(self._rescale)
        self._info = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(self._fit)
        bar.addStretch(1)
        bar.addWidget(self._info)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self._scroll)
        self.resize(900, 680)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / DISPLAY_HZ))
        self._timer.timeout.connect(self._refresh)
        self._timer.start()

    def _rescale(self) -> None:
        image = self.canvas.tile.image()
        if image is not None and self._fit.isChecked():
            view = self._scroll.viewport().size()
            self.canvas.scale = min(view.width() / image.width(), view.height() / image.height())
        self.canvas.resize(self.canvas.sizeHint())

    def _refresh(self) -> None:
        tile = self.canvas.tile
        self._info.setText(
            f"frame {tile.frame_number}   {tile.fps:.1f} fps   x{self.canvas.scale:.2f}"
        )
        if self._fit.isChecked():
            self._rescale()
        self.canvas.update()

    def wheelEvent(self, event: Any) -> None:
        self._fit.setChecked(False)
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        self.canvas.scale = max(0.1, min(8.0, self.canvas.scale * factor))
        self._rescale()

    def done(self, result: int) -> None:
        self._timer.stop()
        self.canvas.tile.set_full_resolution(False)
        super().done(result)
