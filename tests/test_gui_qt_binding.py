"""The Qt binding itself: PySide6 6.12.0 dropped a reference to None on every call
that returns nothing, so any window crashed after a while (Fatal Python error:
none_dealloc). pyproject.toml excludes it; this catches a binding that does it again."""

from __future__ import annotations

import sys

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem


def test_void_qt_calls_keep_none_alive(qtbot):
    image = QImage(64, 48, QImage.Format.Format_BGR888)
    table = QTableWidget(2, 2)
    qtbot.addWidget(table)
    table.setItem(0, 0, QTableWidgetItem("x"))
    before = sys.getrefcount(None)
    for _ in range(1000):
        painter = QPainter(image)
        painter.fillRect(QRect(0, 0, 8, 8), QColor(1, 2, 3))
        painter.end()
        table.item(0, 0).setForeground(QColor(4, 5, 6))
    assert sys.getrefcount(None) - before > -100  # a buggy binding loses 3000 here
