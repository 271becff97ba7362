"""The notification strip above the tiles: what the user must not miss, with what to do.

A status-bar message scrolls away after seconds; a take that stopped on its own, an
engine that went away or the files just saved stay here until dismissed or replaced,
each with its actions (Restart engine, Open folder, Copy path). In a narrow panel the
actions go below the text, which then has the whole width to wrap in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

LEVEL_STYLES = {
    "info": "background: #e3f2fd; color: #0d3c61; border: 1px solid #90caf9;",
    "warning": "background: #fff4e0; color: #663c00; border: 1px solid #ffb74d;",
    "error": "background: #fdecea; color: #611a15; border: 1px solid #e57373;",
}


class NoticeBar(QFrame):
    """One notice at a time: its text, its action buttons and a close button."""

    def __init__(self, parent: QWidget | None = None, *, actions_below: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.level = ""
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._buttons: list[QPushButton] = []
        close = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.dismiss)
        self._close = close
        top = QHBoxLayout()
        top.addWidget(self.text, 1)
        top.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addLayout(top)
        self._actions = top  # text, actions, close
        if actions_below:
            self._actions = QHBoxLayout()
            self._actions.addStretch()
            layout.addLayout(self._actions)
        self.hide()

    def show_notice(self, level: str, text: str,
                    actions: Sequence[tuple[str, Callable[[], object]]] = ()) -> None:
        """Show text at level ("info", "warning", "error") with its action buttons."""
        for button in self._buttons:
            self._actions.removeWidget(button)
            button.deleteLater()
        self._buttons = []
        for title, slot in actions:
            button = QPushButton(title)
            button.clicked.connect(lambda _checked=False, slot=slot: slot())
            # before the close button; after the others where it is not in this row (-1)
            self._actions.insertWidget(self._actions.indexOf(self._close), button)
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
