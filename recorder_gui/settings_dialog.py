"""Per-camera settings, generated from the property metadata the camera's source reports.

Nothing here knows a source's settings: every editor comes from a property dict
(name, kind, value, limits, choices, read_only, reopen, default, modes). Known names get
a label a person reads, with the unit (LABELS; any other name is spelled out from its
snake_case); the engine's name stays in the tooltip. A source that lists its modes
(`modes` on its width) gets a mode picker instead of free size and rate boxes, with a
"Custom…" entry only where the size can be typed.

The dialog is not modal: several cameras' dialogs may be open while the recording
controls stay live. During a recording the settings that restart the camera are locked,
saying why. The engine has the last word; when it refuses a change, every editor goes
back to what the camera really runs and the refusal is shown in plain words next to the
setting it was about.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import Qt
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
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.wire.commands import Command, Properties, Set, Status
from engine.wire.events import (
    RecordingFinalized,
    RecordingResumed,
    RecordingStarted,
    RecordingStopped,
)
from recorder_gui.engine_link import EngineLink

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
FLOAT_LIMIT = 1e12
GEOMETRY = ("width", "height", "fps")  # what a mode sets; never changed during a recording
RESTART_NOTE = "restarts the camera"
RECORDING_NOTE = "stop the recording to change: restarts the camera"
READ_ONLY_NOTE = "fixed by the camera"
INACTIVE_NOTE = "set by the camera's automatic mode"
CUSTOM_MODE = "Custom…"
FORM_SCREEN_SHARE = 0.7  # the settings form's most height; the title and buttons need the rest
MODE_LABEL = "Resolution and frame rate"
ERROR_STYLE = "color: #c62828;"
NOTE_STYLE = "color: gray; font-style: italic;"
LOCKED_STYLE = "color: #b26a00; font-style: italic;"

# Known settings: label, unit and what it means. Units are the sources' own: sizes in
# pixels, rates in frames per second, times in ms. Exposure, gain, brightness and
# contrast have none: a USB camera takes its driver's own numbers, the test pattern a
# relative scale.
LABELS: dict[str, tuple[str, str, str]] = {
    "width": ("Width", "px", "Frame width in pixels (an even number)."),
    "height": ("Height", "px", "Frame height in pixels (an even number)."),
    "fps": ("Frame rate", "fps", "Frames per second."),
    "paced": ("Paced to the frame rate", "",
              "Off: frames are made as fast as possible (for benchmarks)."),
    "brightness": ("Brightness", "", "In the camera's own units."),
    "contrast": ("Contrast", "", "In the camera driver's own units."),
    "exposure": ("Exposure", "",
                 "In the camera's own units (a USB camera's driver decides what they mean)."),
    "gain": ("Gain", "", "In the camera driver's own units."),
    "fourcc": ("Pixel format", "",
               "auto: MJPG where the camera offers the size and rate, else YUYV (uncompressed "
               "YUYV does not fit large sizes at full rate through USB 2)."),
    "pixel_format": ("Pixel format in use", "", "What the camera delivers now."),
    # A USB camera's V4L2 controls, by the names v4l2-ctl gives them; the driver's units.
    "saturation": ("Saturation", "", "In the camera driver's own units."),
    "hue": ("Hue", "", "In the camera driver's own units."),
    "gamma": ("Gamma", "", "In the camera driver's own units."),
    "sharpness": ("Sharpness", "", "In the camera driver's own units."),
    "backlight_compensation": ("Backlight compensation", "", ""),
    "power_line_frequency": ("Power line frequency", "",
                             "The mains frequency of the room's lights, against flicker."),
    "white_balance_automatic": ("Automatic white balance", "",
                                "Off: the white balance temperature below applies."),
    "white_balance_temperature": ("White balance temperature", "K",
                                  "Applies while automatic white balance is off."),
    "auto_exposure": ("Exposure mode", "",
                      "Manual Mode: the exposure time below applies; the other modes let "
                      "the camera choose it."),
    "exposure_time_absolute": ("Exposure time", "× 100 µs",
                               "Applies in Manual Mode; longer than a frame period lowers "
                               "the frame rate."),
    "exposure_dynamic_framerate": ("Lower the frame rate for exposure", "",
                                   "On: the camera may slow down in dim light (the rig's "
                                   "frame rate is then not kept)."),
    "focus_automatic_continuous": ("Autofocus", "", "Off: the focus below applies."),
    "focus_absolute": ("Focus", "", "Applies while autofocus is off; in the driver's units."),
    "zoom_absolute": ("Zoom", "", "In the camera driver's own units."),
    "pan_absolute": ("Pan", "arc seconds", ""),
    "tilt_absolute": ("Tilt", "arc seconds", ""),
    "pattern": ("Test pattern", "", "What the synthetic camera draws."),
    "clock": ("Camera clock", "",
              "gated: a frame on each of the rig's ticks; free: the camera runs on its own "
              "clock, like real hardware."),
    "rate_scale": ("Clock speed factor", "×",
                   "The free-running camera delivers the frame rate times this."),
    "jitter_ms": ("Frame timing jitter", "ms", "Each frame comes up to this early or late."),
    "miss_probability": ("Chance of a skipped frame", "",
                         "From 0 (never) to 0.5 (every other frame)."),
    "seed": ("Random seed", "", "Of the jitter and skipped frames."),
    "open_timeout_ms": ("Connection timeout", "ms",
                        "How long to wait for the stream when connecting."),
    "read_timeout_ms": ("Read timeout", "ms", "A stream silent this long has failed."),
    "rtsp_transport": ("RTSP transport", "",
                       "tcp: no packet is lost; udp: a little less latency."),
    "record": ("Record as", "",
               "copy: the camera's own H.264/H.265 packets, not re-encoded (one camera of "
               "a rig); encode: decoded and encoded again; auto: copy where it can."),
    "tls_verify": ("Check TLS certificate", "",
                   "Off accepts a camera's self-signed certificate (rtsps://, https://)."),
    "loop": ("Loop the file", "", "Off: the camera ends at the end of the file."),
}
# Units a name ends with, for settings LABELS does not know ("settle_time_ms").
UNIT_SUFFIXES = {"ms": "ms", "s": "s", "us": "µs", "hz": "Hz", "px": "px", "fps": "fps",
                 "pct": "%", "percent": "%", "db": "dB", "c": "°C"}


def describe_setting(name: str) -> tuple[str, str, str]:
    """(label, unit, hint) of a setting: LABELS', or spelled out from its snake_case."""
    if name in LABELS:
        return LABELS[name]
    words = [word for word in name.split("_") if word]
    unit = ""
    if len(words) > 1 and words[-1].lower() in UNIT_SUFFIXES:
        unit = UNIT_SUFFIXES[words.pop().lower()]
    text = " ".join(words) or name
    return text[:1].upper() + text[1:], unit, ""


def setting_label(name: str) -> str:
    """What a form shows for a setting: "Frame rate (fps)"."""
    label, unit, _hint = describe_setting(name)
    return f"{label} ({unit})" if unit else label


def mode_text(width: int, height: int, fps: float) -> str:
    return f"{width} × {height} at {fps:g} fps"


@contextmanager
def busy_cursor() -> Iterator[None]:
    """A wait cursor while the GUI thread blocks on the engine (restarts take seconds).

    sync() shows it without running the event loop: processing events here, inside the
    signal handlers that call this (an add dialog's accept, say), re-entered Qt and
    crashed the process now and then (a segfault seen in CI)."""
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    QApplication.sync()
    try:
        yield
    finally:
        QApplication.restoreOverrideCursor()


def run_command(link: EngineLink, command: Command) -> tuple[Any | None, str]:
    """Run an engine command under a busy cursor; return (result, refusal reason)."""
    with busy_cursor():
        return link.try_command(command)


# --- refusals in plain words ---------------------------------------------------------------

_REFUSALS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text) for pattern, text in (
        (r"(?P<name>\w+) must be a multiple of 2, got (?P<got>\S+)",
         "{label} must be an even number ({got} is not)."),
        (r"(?P<name>\w+) must be a multiple of (?P<step>\S+), got (?P<got>\S+)",
         "{label} must be a multiple of {step} ({got} is not)."),
        (r"(?P<name>\w+) must be >= (?P<low>\S+), got (?P<got>\S+)",
         "{label} must be at least {low}{unit} ({got} is too small)."),
        (r"(?P<name>\w+) must be <= (?P<high>\S+), got (?P<got>\S+)",
         "{label} must be at most {high}{unit} ({got} is too large)."),
        (r"(?P<name>\w+) must be one of (?P<choices>.+), got .*",
         "{label} must be one of: {choices}."),
        (r"(?P<name>\w+) must be an integer, got (?P<got>.+)",
         "{label} must be a whole number ({got} is not)."),
        (r"(?P<name>\w+) must be a (?:finite )?number, got (?P<got>.+)",
         "{label} must be a number ({got} is not)."),
        (r"(?P<name>\w+) must be true or false, got .*", "{label} must be on or off."),
        (r"(?P<name>\w+) is read-only", "{label} is fixed by the camera: it cannot be changed."),
        (r"unknown setting '(?P<name>\w+)'.*", "This camera has no setting “{name}”."),
        (r"size and fps cannot change during a recording",
         "The resolution and frame rate cannot change during a recording: stop the "
         "recording first."),
    )
)


def plain_refusal(reason: str, camera_id: str = "") -> tuple[str | None, str]:
    """(the setting it was about or None, a sentence a user reads) for an engine refusal:
    "set: cam0: width must be a multiple of 2, got 1281" ->
    ("width", "Width must be an even number (1281 is not).")."""
    text = reason.strip()
    prefixes = tuple(f"{prefix}: " for prefix in (Set.NAME, Properties.NAME, camera_id) if prefix)
    while text.startswith(prefixes):
        text = text.split(": ", 1)[1]
    for pattern, template in _REFUSALS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        fields = match.groupdict()
        name = fields.get("name")
        label, unit, _hint = describe_setting(name) if name else ("", "", "")
        for key in ("low", "high", "got"):  # "1.0" reads as "1"
            if key in fields:
                fields[key] = _number_text(fields[key])
        sentence = template.format(**{**fields, "label": label, "unit": f" {unit}" if unit
                                      else ""})
        return name, sentence
    name = text.split(" ", 1)[0]
    known = name in LABELS or (name.islower() and "_" in name)
    if known:  # "jitter_ms must be below ..." -> "Frame timing jitter must be below ..."
        text = describe_setting(name)[0] + text[len(name):]
    text = re.sub(r", got (.+)$", r", not \1", text)  # "..., got 20" -> "..., not 20"
    text = text[:1].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return (name if known else None), text


def _number_text(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


# --- editors -------------------------------------------------------------------------------


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
        # A GenICam camera may declare limits as wide as a double goes (+-1.8e308).
        low, high = prop.get("minimum"), prop.get("maximum")
        minimum = -FLOAT_LIMIT if low is None else max(-FLOAT_LIMIT, low)
        maximum = FLOAT_LIMIT if high is None else min(FLOAT_LIMIT, high)
        step = prop.get("step")
        if not step:  # about a hundredth of the span, at most 1
            span = maximum - minimum
            step = min(1.0, 10.0 ** (math.floor(math.log10(span)) - 1)) if span > 0 else 0.01
        editor.setDecimals(
            min(6, max(2, _decimals(step), _decimals(minimum), _decimals(prop.get("value"))))
        )
        editor.setRange(minimum, maximum)
        editor.setSingleStep(step)
    else:
        raise ValueError(f"{prop['name']}: unknown property kind {kind!r}")
    editor.setEnabled(not prop.get("read_only") and not prop.get("inactive"))
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


class _Row(QWidget):
    """One form row's field: the editor, a note beside it and, below, a refusal."""

    def __init__(self, editor: QWidget) -> None:
        super().__init__()
        self.editor = editor
        self.note = QLabel()
        self.note.setStyleSheet(NOTE_STYLE)
        self.note.hide()
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(editor)
        line.addWidget(self.note)
        line.addStretch()
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addLayout(line)
        box.addWidget(self.error)

    def set_note(self, text: str, style: str = NOTE_STYLE) -> None:
        self.note.setText(text)
        self.note.setStyleSheet(style)
        self.note.setVisible(bool(text))

    def set_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))


class SettingsDialog(QDialog):
    """Edit one camera's settings; Apply sends only what changed and reverts on refusal."""

    def __init__(self, link: EngineLink, camera_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self._link = link
        self.camera_id = camera_id
        self.recording = False
        self._recording_folder: str | None = None
        self.setWindowTitle(f"Settings of camera {camera_id}")

        self.recording_label = QLabel(
            "A recording is running: the settings that restart the camera are locked "
            "until it stops.")
        self.recording_label.setStyleSheet(LOCKED_STYLE)
        self.recording_label.setWordWrap(True)
        self.recording_label.hide()
        self.error_label = QLabel()
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.RestoreDefaults
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Close
        )
        self.reset_button = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        self.reset_button.setText("Reset to defaults")
        self.reset_button.setToolTip("Show every setting's default; Apply or OK uses them.")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        self.buttons.accepted.connect(self._apply_and_close)
        self.buttons.rejected.connect(self.reject)

        self._layout = QVBoxLayout(self)
        # A machine-vision camera lists dozens of features: the form scrolls, the buttons
        # stay on the screen.
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._layout.addWidget(self.recording_label)
        self._layout.addWidget(self._scroll)
        self._layout.addWidget(self.error_label)
        self._layout.addWidget(self.buttons)

        for started in (link.recording_started, link.recording_resumed):
            started.connect(self._on_recording_started)
        for ended in (link.recording_stopped, link.recording_finalized):
            ended.connect(self._on_recording_ended)
        self.reload()

    # --- building the form from the engine's answer --------------------------------------

    def _fit(self, form: QWidget) -> None:
        """Show the whole form where the screen has room for it, else as much as fits in
        FORM_SCREEN_SHARE of its height (the rest scrolls)."""
        hint = form.sizeHint()
        screen = self.screen()
        room = int(screen.availableGeometry().height() * FORM_SCREEN_SHARE) \
            if screen is not None else hint.height()
        self._scroll.setMinimumHeight(min(hint.height(), room))
        self._scroll.setMinimumWidth(
            hint.width() + self._scroll.verticalScrollBar().sizeHint().width())

    def reload(self) -> None:
        """Read the camera's properties and whether a recording runs from the engine again
        (after an engine restart, say); unapplied edits are dropped."""
        self.editors: dict[str, QWidget] = {}
        self.rows: dict[str, _Row] = {}
        self.props: dict[str, dict[str, Any]] = {}
        self._tips: dict[str, str] = {}
        self._applied: dict[str, Any] = {}  # what the engine last said the camera runs
        self._shown: dict[str, Any] = {}  # what each editor showed for it (after rounding)
        self.modes: list[tuple[int, int, float]] = []
        self.mode_editor: QComboBox | None = None
        self.mode_row: _Row | None = None
        self.error_label.clear()

        properties, reason = run_command(self._link, Properties(camera=self.camera_id))
        status, _reason = run_command(self._link, Status())
        recording = (status or {}).get("recording")
        self.recording = bool(recording)
        self._recording_folder = recording.get("folder") if isinstance(recording, dict) else None

        form_widget = QWidget()
        self._form = QFormLayout(form_widget)
        self._form.setContentsMargins(0, 0, 0, 0)
        for prop in properties or []:
            if prop["name"] == "width" and prop.get("modes"):
                self._add_mode_row(prop)
            self._add_row(prop)
        editors = [*self.editors.values(), *([self.mode_editor] if self.mode_editor else [])]
        widest = max((editor.sizeHint().width() for editor in editors), default=0)
        for editor in editors:  # one column of editors, their notes lined up beside it
            editor.setMinimumWidth(widest)
        self._scroll.setWidget(form_widget)  # the previous form is deleted
        self._fit(form_widget)
        if properties is None:
            self.error_label.setText(plain_refusal(reason, self.camera_id)[1])
        self._load()
        self._show_custom(self._mode_is_custom())
        for button in (QDialogButtonBox.StandardButton.Apply, QDialogButtonBox.StandardButton.Ok):
            self.buttons.button(button).setEnabled(properties is not None)
        self.reset_button.setEnabled(
            any(prop.get("default") is not None for prop in self.props.values()))
        self._lock_restarting()

    def _add_row(self, prop: dict[str, Any]) -> None:
        name = prop["name"]
        hint = describe_setting(name)[2]
        editor = make_editor(prop)
        row = _Row(editor)
        label = QLabel(setting_label(name))
        label.setBuddy(editor)
        tip = "\n".join(text for text in (hint, f"Engine setting: {name}") if text)
        label.setToolTip(tip)
        editor.setToolTip(tip)
        self._tips[name] = tip
        if prop.get("read_only"):
            row.set_note(READ_ONLY_NOTE)
        elif prop.get("inactive"):
            row.set_note(INACTIVE_NOTE)
        self.editors[name] = editor
        self.rows[name] = row
        self.props[name] = prop
        self._applied[name] = prop.get("value")
        self._form.addRow(label, row)

    def _add_mode_row(self, width: dict[str, Any]) -> None:
        """A combo of the camera's modes; "Custom…" shows the size and rate boxes where the
        size may be typed."""
        combo = QComboBox()
        self.modes = [(int(w), int(h), float(fps)) for w, h, fps in width["modes"]]
        for mode in self.modes:
            combo.addItem(mode_text(*mode), mode)
        if not width.get("read_only"):
            combo.addItem(CUSTOM_MODE, None)
        combo.setEnabled(not width.get("read_only"))
        combo.setToolTip("The modes this camera offers.\nEngine settings: width, height, fps")
        combo.activated.connect(self._mode_chosen)
        self.mode_editor = combo
        self.mode_row = _Row(combo)
        if width.get("read_only"):
            self.mode_row.set_note(READ_ONLY_NOTE)
        label = QLabel(MODE_LABEL)
        label.setBuddy(combo)
        self._form.addRow(label, self.mode_row)

    def _mode_is_custom(self) -> bool:
        return self.mode_editor is not None and self.mode_editor.currentData() is None

    def _mode_chosen(self, index: int) -> None:
        assert self.mode_editor is not None
        mode = self.mode_editor.itemData(index)
        if mode is not None:
            for name, value in zip(GEOMETRY, mode, strict=True):
                if name in self.editors:
                    show_value(self.editors[name], value)
        self._show_custom(mode is None)

    def _show_custom(self, custom: bool) -> None:
        """The size and rate boxes: shown without a mode picker, or for "Custom…"."""
        if self.mode_editor is None:
            return
        for name in GEOMETRY:
            if name in self.rows:
                self._form.setRowVisible(self.rows[name], custom)

    def _sync_mode(self) -> None:
        """Select the mode the size and rate editors show (or Custom…, or add it)."""
        combo = self.mode_editor
        if combo is None:
            return
        current = tuple(editor_value(self.editors[name]) if name in self.editors else None
                        for name in GEOMETRY)
        for index in range(combo.count()):
            mode = combo.itemData(index)
            if mode is not None and mode[:2] == current[:2] and math.isclose(
                    mode[2], current[2] or 0.0, rel_tol=1e-6):
                combo.setCurrentIndex(index)
                return
        custom = combo.findData(None)
        if custom < 0 and None not in current:  # a fixed camera running a mode it did not list
            combo.addItem(mode_text(*current), current)  # type: ignore[arg-type]
            custom = combo.count() - 1
        combo.setCurrentIndex(custom)

    # --- recording: restarting settings locked ---------------------------------------------

    def restarts_camera(self, name: str) -> bool:
        """Whether changing a setting restarts the camera (so not during a recording)."""
        return name in GEOMETRY or bool(self.props.get(name, {}).get("reopen"))

    def set_recording(self, recording: bool) -> None:
        self.recording = recording
        self._lock_restarting()

    def _on_recording_started(self, event: RecordingStarted | RecordingResumed) -> None:
        self._recording_folder = event.folder
        self.set_recording(True)

    def _on_recording_ended(self, event: RecordingStopped | RecordingFinalized) -> None:
        # A late "finalized" of an earlier take does not unlock a later one.
        if self._recording_folder in (None, event.folder):
            self._recording_folder = None
            self.set_recording(False)

    def _lock_restarting(self) -> None:
        locked_tip = f"Stop the recording to change this: it {RESTART_NOTE}."
        restarting = [name for name in self.editors if self.restarts_camera(name)]
        for name in restarting:
            prop, editor, row = self.props[name], self.editors[name], self.rows[name]
            if prop.get("read_only"):
                continue
            editor.setEnabled(not self.recording)
            if self.mode_editor is not None and name in GEOMETRY:
                row.set_note("")  # the mode picker above says it for the size and rate
            elif self.recording:
                row.set_note(RECORDING_NOTE, LOCKED_STYLE)
            else:
                row.set_note(RESTART_NOTE)
            tip = self._tips[name]
            editor.setToolTip(f"{locked_tip}\n{tip}" if self.recording else tip)
        if self.mode_editor is not None and self.mode_row is not None:
            fixed = self.props.get("width", {}).get("read_only")
            if not fixed:
                self.mode_editor.setEnabled(not self.recording)
                self.mode_row.set_note(RECORDING_NOTE if self.recording else RESTART_NOTE,
                                       LOCKED_STYLE if self.recording else NOTE_STYLE)
                self.mode_editor.setToolTip(
                    (f"{locked_tip}\n" if self.recording else "")
                    + "The modes this camera offers.\nEngine settings: width, height, fps")
        self.recording_label.setVisible(self.recording and bool(restarting))

    # --- values ----------------------------------------------------------------------------

    def _load(self) -> None:
        """Show the applied values, and remember how each editor shows them."""
        for name, editor in self.editors.items():
            show_value(editor, self._applied[name])
            self._shown[name] = editor_value(editor)
        self._sync_mode()

    def changes(self) -> dict[str, Any]:
        """The edited values that differ from what the camera runs."""
        return {
            name: editor_value(editor)
            for name, editor in self.editors.items()
            if editor.isEnabled() and editor_value(editor) != self._shown[name]
        }

    def reset_to_defaults(self) -> None:
        """Show each changeable setting's default (Apply or OK sends them)."""
        for name, editor in self.editors.items():
            default = self.props[name].get("default")
            if editor.isEnabled() and default is not None:
                show_value(editor, default)
        self._sync_mode()
        self._show_custom(self._mode_is_custom())

    def apply(self) -> bool:
        """Send the changes; True when the engine took them (or there were none)."""
        self._clear_errors()
        changes = self.changes()
        if not changes:
            return True
        result, reason = run_command(self._link, Set(camera=self.camera_id, changes=changes))
        if result is not None:
            self._applied.update(
                {name: value for name, value in result["settings"].items() if name in self.editors}
            )
            self._refresh_inactive()
        self._load()
        self._show_custom(self._mode_is_custom())
        if result is None:
            self._show_refusal(reason or "refused")
        return result is not None

    def _refresh_inactive(self) -> None:
        """A change can make other settings (in)active (automatic white balance off makes
        its temperature editable): read which are, as the engine now says."""
        if not any("inactive" in prop for prop in self.props.values()):
            return
        properties, _reason = run_command(self._link, Properties(camera=self.camera_id))
        for prop in properties or []:
            name = prop["name"]
            if name not in self.editors or prop.get("read_only") \
                    or self.restarts_camera(name):
                continue
            self.props[name] = prop
            self.editors[name].setEnabled(not prop.get("inactive"))
            self.rows[name].set_note(INACTIVE_NOTE if prop.get("inactive") else "")

    def _clear_errors(self) -> None:
        self.error_label.clear()
        for row in (*self.rows.values(), self.mode_row):
            if row is not None:
                row.set_error("")

    def _show_refusal(self, reason: str) -> None:
        """The refusal in plain words, next to the setting it was about if it is shown."""
        name, sentence = plain_refusal(reason, self.camera_id)
        row = self.rows.get(name) if name else None
        if row is not None and name in GEOMETRY and self.mode_row is not None \
                and not self._mode_is_custom():
            row = self.mode_row
        if row is not None:
            row.set_error(sentence)
        else:
            self.error_label.setText(sentence)

    def refusal(self, name: str | None = None) -> str:
        """The refusal shown next to a setting (or, None, below the form)."""
        if name is None:
            return self.error_label.text()
        row = self.mode_row if name == "mode" else self.rows.get(name)
        return row.error.text() if row is not None else ""

    def _apply_and_close(self) -> None:
        if self.apply():
            self.accept()
