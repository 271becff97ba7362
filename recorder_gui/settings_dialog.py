"""Per-camera settings, generated from the property metadata the camera's source reports.

Nothing here knows a source's settings: every editor comes from a property dict
(name, kind, value, limits, choices, read_only, reopen). The engine has the last
word; when it refuses a change, every editor goes back to what the camera really runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.wire.commands import Command, Properties, Set
from recorder_gui.engine_link import EngineLink

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
FLOAT_LIMIT = 1e12
REOPEN_NOTE = "restarts the camera's frame buffer"


@contextmanager
def busy_cursor() -> Iterator[None]:
    """A wait cursor while the GUI thread blocks on the engine (restarts take seconds)."""
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


def run_command(link: EngineLink, command: Command) -> tuple[Any | None, str]:
    """Run an engine command under a busy cursor; return (result, refusal reason)."""
    with busy_cursor():
        return link.try_command(command)


def _decimals(number: float | None) -> int:
    """Fraction digits needed to show number exactly (up to 6)."""
    if not number:
        return 0
    text = f"{abs(number):.6f}".rstrip("0")
    return len(text.partition(".")[2])


def make_editor(prop: dict[str, Any]) -> QWidget:
    """The editor for one property, limited as the source says."""
    kind = prop["kind"]
    if kind == "bool":
        editor: QWidget = QCheckBox()
    elif kind == "choice":
        editor = QComboBox()
        editor.addItems([str(choice) for choice in prop.get("choices") or ()])
    elif kind == "int":
        editor = QSpinBox()
        minimum, maximum = prop.get("minimum"), prop.get("maximum")
        editor.setRange(
            -INT_LIMIT if minimum is None else max(-INT_LIMIT, math.ceil(minimum)),
            INT_LIMIT if maximum is None else min(INT_LIMIT, math.floor(maximum)),
        )
        editor.setSingleStep(max(1, int(prop.get("step") or 1)))
    elif kind == "float":
        editor = QDoubleSpinBox()
        minimum, maximum = prop.get("minimum"), prop.get("maximum")
        step = prop.get("step")
        if not step:  # about a hundredth of the span, at most 1
            span = (maximum - minimum) if minimum is not None and maximum is not None else 100
            step = min(1.0, 10.0 ** (math.floor(math.log10(span)) - 1)) if span > 0 else 0.01
        editor.setDecimals(
            min(6, max(2, _decimals(step), _decimals(minimum), _decimals(prop.get("value"))))
        )
        editor.setRange(
            -FLOAT_LIMIT if minimum is None else minimum,
            FLOAT_LIMIT if maximum is None else maximum,
        )
        editor.setSingleStep(step)
    else:
        raise ValueError(f"{prop['name']}: unknown property kind {kind!r}")
    editor.setEnabled(not prop.get("read_only"))
    return editor


def editor_value(editor: QWidget) -> Any:
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        return editor.value()
    raise TypeError(f"not a setting editor: {type(editor).__name__}")


def show_value(editor: QWidget, value: Any) -> None:
    """Put value in the editor; None (a control the device did not report) leaves it as is."""
    if value is None:
        return
    if isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QComboBox):
        index = editor.findText(str(value))
        if index < 0:  # a value outside the advertised choices is still what the camera runs
            editor.addItem(str(value))
            index = editor.count() - 1
        editor.setCurrentIndex(index)
    elif isinstance(editor, QSpinBox):
        editor.setValue(int(value))
    elif isinstance(editor, QDoubleSpinBox):
        editor.setValue(float(value))


class SettingsDialog(QDialog):
    """Edit one camera's settings; Apply sends only what changed and reverts on refusal."""

    def __init__(self, link: EngineLink, camera_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._link = link
        self.camera_id = camera_id
        self.editors: dict[str, QWidget] = {}
        self._applied: dict[str, Any] = {}  # what the engine last said the camera runs
        self._shown: dict[str, Any] = {}  # what each editor showed for it (after rounding)
        self.setWindowTitle(f"Settings of {camera_id}")

        form = QFormLayout()
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setWordWrap(True)
        properties, reason = run_command(link, Properties(camera=camera_id))
        for prop in properties or []:
            editor = make_editor(prop)
            self.editors[prop["name"]] = editor
            self._applied[prop["name"]] = prop.get("value")
            form.addRow(prop["name"], self._with_note(editor) if prop.get("reopen") else editor)
        if properties is None:
            self.error_label.setText(reason)
        self._load()

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Close
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        self.buttons.accepted.connect(self._apply_and_close)
        self.buttons.rejected.connect(self.reject)
        for button in (QDialogButtonBox.StandardButton.Apply, QDialogButtonBox.StandardButton.Ok):
            self.buttons.button(button).setEnabled(properties is not None)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    @staticmethod
    def _with_note(editor: QWidget) -> QWidget:
        note = QLabel(REOPEN_NOTE)
        note.setStyleSheet("color: gray; font-style: italic;")
        editor.setToolTip(f"Changing this {REOPEN_NOTE}; refused during a recording.")
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(editor)
        box.addWidget(note)
        return row

    def _load(self) -> None:
        """Show the applied values, and remember how each editor shows them."""
        for name, editor in self.editors.items():
            show_value(editor, self._applied[name])
            self._shown[name] = editor_value(editor)

    def changes(self) -> dict[str, Any]:
        """The edited values that differ from what the camera runs."""
        return {
            name: editor_value(editor)
            for name, editor in self.editors.items()
            if editor.isEnabled() and editor_value(editor) != self._shown[name]
        }

    def apply(self) -> bool:
        """Send the changes; True when the engine took them (or there were none)."""
        changes = self.changes()
        if not changes:
            return True
        result, reason = run_command(self._link, Set(camera=self.camera_id, changes=changes))
        if result is not None:
            self._applied.update(
                {name: value for name, value in result["settings"].items() if name in self.editors}
            )
        self._load()
        self.error_label.setText("" if result is not None else reason or "refused")
        return result is not None

    def _apply_and_close(self) -> None:
        if self.apply():
            self.accept()
