"""The settings dialog of a USB camera shows its driver's real controls: a menu as a combo
box of its entries, an inactive control disabled (until its automatic mode is switched
off), limits and steps from the driver, and the camera's modes as a picker.

The engine is a stand-in client whose camera is a DeviceSource over the recorded answers
of a Logitech C920 (tests/c920_driver.py): what the dialog is given is what a real
camera process would report.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSpinBox

from engine.sources import create_source
from engine.sources.v4l2_device import V4L2Device
from recorder_gui.engine_link import EngineLink
from recorder_gui.settings_dialog import INACTIVE_NOTE, SettingsDialog
from tests.c920_driver import C920Driver
from tests.source_engine import SourceEngine


def c920_engine() -> SourceEngine:
    """The engine's answers for one C920 camera, from its recorded driver answers."""
    source = create_source("/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920-video-index0",
                           0, 1920, 1080, 30)
    driver = C920Driver()
    source._device = V4L2Device(driver)  # type: ignore[attr-defined]
    engine = SourceEngine(source)
    engine.driver = driver  # type: ignore[attr-defined]  # the test reads what was set
    return engine


@pytest.fixture
def dialog(qtbot):
    engine = c920_engine()
    link = EngineLink(engine)  # type: ignore[arg-type]
    dialog = SettingsDialog(link, "usb")
    qtbot.addWidget(dialog)
    dialog.engine = engine
    return dialog


def label_of(dialog: SettingsDialog, name: str) -> str:
    label = dialog._form.labelForField(dialog.rows[name])
    assert isinstance(label, QLabel)
    return label.text()


def test_a_menu_control_is_a_combo_box_of_its_entries(dialog):
    power = dialog.editors["power_line_frequency"]
    assert isinstance(power, QComboBox)
    assert [power.itemText(i) for i in range(power.count())] == ["Disabled", "50 Hz", "60 Hz"]
    assert power.currentText() == "60 Hz"
    exposure = dialog.editors["auto_exposure"]
    assert [exposure.itemText(i) for i in range(exposure.count())] == [
        "Manual Mode", "Aperture Priority Mode"]
    assert label_of(dialog, "auto_exposure") == "Exposure mode"
    assert label_of(dialog, "power_line_frequency") == "Power line frequency"


def test_limits_and_steps_come_from_the_driver(dialog):
    temperature = dialog.editors["white_balance_temperature"]
    assert isinstance(temperature, QSpinBox)
    assert (temperature.minimum(), temperature.maximum(), temperature.value()) == (
        2000, 6500, 4000)
    focus = dialog.editors["focus_absolute"]
    assert (focus.minimum(), focus.maximum(), focus.singleStep()) == (0, 250, 5)
    assert (dialog.editors["exposure_time_absolute"].minimum(),
            dialog.editors["exposure_time_absolute"].maximum()) == (3, 2047)
    assert label_of(dialog, "white_balance_temperature") == "White balance temperature (K)"
    assert isinstance(dialog.editors["white_balance_automatic"], QCheckBox)
    assert dialog.editors["white_balance_automatic"].isChecked()
    fourcc = dialog.editors["fourcc"]
    assert [fourcc.itemText(i) for i in range(fourcc.count())] == ["auto", "MJPG", "YUYV"]


def test_an_inactive_control_is_disabled_until_its_automatic_mode_is_off(dialog):
    temperature = dialog.editors["white_balance_temperature"]
    assert not temperature.isEnabled()
    assert dialog.rows["white_balance_temperature"].note.text() == INACTIVE_NOTE
    assert "white_balance_temperature" not in dialog.changes()
    dialog.editors["white_balance_automatic"].setChecked(False)
    assert dialog.apply()
    assert temperature.isEnabled() and not dialog.rows["white_balance_temperature"].note.text()
    temperature.setValue(5000)
    assert dialog.apply()
    assert dialog.engine.driver.values[0x0098091A] == 5000
    assert temperature.value() == 5000


def test_the_size_and_rate_are_picked_from_the_cameras_modes(dialog):
    picker = dialog.mode_editor
    assert picker is not None and picker.isEnabled()
    modes = [picker.itemText(i) for i in range(picker.count())]
    assert "1920 × 1080 at 30 fps" in modes and "2304 × 1536 at 2 fps" in modes
    assert picker.currentText() == "1920 × 1080 at 30 fps"
