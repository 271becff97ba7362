"""The settings dialog of a Basler camera shows the camera's own GenICam features: an
enumeration as a combo box of its entries, a float with the camera's limits, a feature the
camera will not let one write disabled, and a change read back from the camera.

The engine is a stand-in client whose camera is a PylonSource on pylon's camera emulation
(PYLON_CAMEMU): what the dialog is given is what a real camera process would report.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("PYLON_CAMEMU", "3")
pytest.importorskip("pypylon.pylon", reason="pypylon is not installed")

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox

from engine.sources import create_source
from recorder_gui.engine_link import EngineLink
from recorder_gui.settings_dialog import SettingsDialog
from tests.source_engine import SourceEngine


@pytest.fixture
def dialog(qtbot):
    source: Any = create_source("pylon:0", 0, 640, 480, 30.0)
    source.open()
    engine = SourceEngine(source)
    link = EngineLink(engine)  # type: ignore[arg-type]
    dialog = SettingsDialog(link, "basler")
    qtbot.addWidget(dialog)
    dialog.engine = engine
    yield dialog
    engine.source.close()


def test_the_dialog_shows_the_cameras_features_with_their_limits(dialog):
    camera = dialog.engine.source._camera
    exposure = dialog.editors["ExposureTime"]
    assert isinstance(exposure, QDoubleSpinBox)
    assert (exposure.minimum(), exposure.maximum()) == (camera.ExposureTime.Min,
                                                        camera.ExposureTime.Max)
    gain_auto = dialog.editors["GainAuto"]
    assert isinstance(gain_auto, QComboBox)
    assert [gain_auto.itemText(i) for i in range(gain_auto.count())] == list(
        camera.GainAuto.Symbolics)
    assert not dialog.editors["SensorWidth"].isEnabled()  # read-only on the camera


def test_a_change_is_set_on_the_camera_and_read_back(dialog):
    dialog.editors["ExposureTime"].setValue(2500.0)
    assert dialog.apply()
    assert dialog.engine.source._camera.ExposureTime.Value == 2500.0


def test_dozens_of_features_scroll_and_the_buttons_stay_on_the_screen(dialog):
    assert len(dialog.editors) > 25
    screen = dialog.screen().availableGeometry()
    assert dialog.sizeHint().height() <= screen.height()
    assert dialog._scroll.verticalScrollBar().maximum() > 0 or \
        dialog._scroll.widget().sizeHint().height() <= screen.height() * 0.7
