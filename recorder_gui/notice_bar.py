"""The notification strip above the tiles: what the user must not miss, with what to do.

A status-bar message scrolls away after seconds; a take that stopped on its own, an
engine that went away or the files just saved stay here until dismissed or replaced,
each with its actions (Restart engine, Open folder, Copy path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

LEVEL_STYLES = {
    "info": "background: #e3f2fd; color: #0d3c61; border: 1px solid #90caf9;",
    "warning": "background: #fff4e0; color: #663c00; border: 1px solid #ffb74d;",
    "error": "background: #fdecea; color: #611a15; border: 1px solid #e57373;",
}


class NoticeBar(QFrame):
    """One notice at a time: its text, its action buttons and a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.level = ""
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._buttons: list[QPushButton] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self._layout.addWidget(self.text, 1)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.dismiss)
        self._close = close
        self._layout.addWidget(close)
        self.hide()

    def show_notice(self, level: str, text: str,
                    actions: Sequence[tuple[str, Callable[[], object]]] = ()) -> None:
        """Show text at level ("info", "warning", "error") with its action buttons."""
        for button in self._buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self._buttons = []
        for title, slot in actions:
            button = QPushButton(title)
            button.clicked.connect(lambda _checked=False, slot=slot: slot())
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.level = level
        self.text.setText(text)
        self.setStyleSheet(f"#notice {{ {LEVEL_STYLES[level]} }} "
                           f"#notice QLabel {{ border: none; background: transparent; }}")
        self.show()

    def button(self, title: str) -> QPushButton | None:
        """The action button with this title (for tests and keyboard users)."""
        return next((button for button in self._buttons if button.text() == title), None)

    def dismiss(self) -> None:
        self.level = ""
        self.hide()
