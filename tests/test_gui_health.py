"""The health panel and the status bar's device indicators, fed synthetic snapshots.

A quiet engine client sends nothing by itself, so each test decides exactly which device and
stats events the widgets see (a real engine would interleave its own stats every second).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QLabel

from engine.wire.commands import Command
from engine.wire.events import EVENTS, Device, Stats
from recorder_gui.device_status import GB, MB, NOT_REPORTED
from recorder_gui.engine_link import EngineLink
from recorder_gui.health_panel import HealthPanel
from recorder_gui.history_plot import HISTORY_POINTS, HISTORY_SECONDS
from recorder_gui.main_window import MainWindow
from recorder_gui.recording_panel import ALARM, WARNING
from recorder_gui.status_icons import DeviceIndicators

pytestmark = pytest.mark.timeout(60)

START = 1_700_000_000.0

SNAPSHOT: dict[str, Any] = {
    "event": "device", "time": START, "device_id": "rig-01", "software_version": "0.4.0",
    "uptime_seconds": 7500.0, "engine_state": "recording",
    "cpu": {"usage_percent": 35.4, "per_core_percent": [20.0, 31.0, 64.0, 27.0],
            "temperature_c": 58.2},
    "memory": {"total_bytes": 8 * GB, "used_bytes": 3_300_000_000,
               "available_bytes": 4_700_000_000, "used_percent": 41.25},
    "storage": {"path": "/data/recordings", "total_bytes": 118 * GB, "used_bytes": 78 * GB,
                "free_bytes": 40 * GB, "write_rate_bps": 12.5 * MB, "seconds_to_full": 3200.0,
                "level": "ok"},
    "network": {"status": "online",
                "interfaces": [{"name": "wlan0", "addresses": ["192.168.1.20", "fe80::1"]}],
                "wifi": {"ssid": "lab", "signal_dbm": -58}},
    "recording": {"active": True, "id": "2026-11-22_10-15-00", "duration_s": 754.0},
    "battery": {"percent": 86.6, "voltage_v": 8.12, "current_a": -0.8, "power_w": 6.5,
                "is_charging": False},
    "device_healthy": True, "device_error": None, "warnings": [],
}


def snapshot(**changes: Any) -> Device:
    """The snapshot above with some parts changed; a dict value updates that part's keys."""
    result = copy.deepcopy(SNAPSHOT)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key].update(value)
        else:
            result[key] = value
    device: Device = EVENTS.from_wire(result)
    return device


def stats(at: float, cameras: list[dict[str, Any]]) -> Stats:
    return Stats(time=at, cameras=cameras, spread=None, paused=False)


class QuietClient:
    """An engine client that sends no events and answers every command with nothing."""

    def subscribe(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def call(self, command: Command) -> None:
        return None


pytestmark = pytest.mark.usefixtures("no_leaked_widgets")


@pytest.fixture
def link(qapp):
    return EngineLink(QuietClient())


def health_panel(qtbot, link: EngineLink) -> HealthPanel:
    """Made in the test, not a fixture: a fixture's value outlives the leak check."""
    panel = HealthPanel(link)
    qtbot.addWidget(panel)
    return panel


def text_colour(label: QLabel) -> QColor | None:
    """The label's own text colour, None when it has the normal one."""
    colour = label.palette().color(QPalette.ColorRole.WindowText)
    return None if colour == QPalette().color(QPalette.ColorRole.WindowText) else colour


def points(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getData()
    return (np.array([]), np.array([])) if x is None else (x, y)


# --- device values -----------------------------------------------------------------------

def test_values_show_once_the_engine_reports_them(qtbot, link):
    panel = health_panel(qtbot, link)
    for label in panel.device_values.values():
        assert (label.text(), label.toolTip()) == ("—", NOT_REPORTED)

    link.device.emit(snapshot())
    values = {key: label.text() for key, label in panel.device_values.items()}
    assert values == {
        "device": "rig-01 · 0.4.0 · up 2 h 05 min · recording (12 min)",
        "cpu": "35 % · 4 cores 20–64 % · 58 °C",
        "memory": "41 % · 3.3 GB of 8.0 GB",
        "disk": "40.0 GB free · writing 12.5 MB/s · full in 53 min",
        "network": "online · Wi-Fi “lab” -58 dBm",
        "battery": "87 % · 8.12 V · on battery",
    }
    assert panel.device_values["cpu"].toolTip().splitlines()[2] == "core 2: 64 %"
    assert panel.device_values["disk"].toolTip().startswith("/data/recordings\n")
    assert panel.device_values["network"].toolTip() == "wlan0: 192.168.1.20, fe80::1"
    assert panel.device_values["device"].toolTip() == "recording 2026-11-22_10-15-00"
    assert all(text_colour(label) is None for label in panel.device_values.values())
    assert panel.alerts_label.isHidden()
    assert not [line for line in panel.log_lines() if "device" in line]  # too frequent


def test_optional_parts_read_plainly_when_absent(qtbot, link):
    panel = health_panel(qtbot, link)
    link.device.emit(snapshot(
        device_id="<b>rig</b>",  # shown as it is, not as markup
        cpu={"per_core_percent": [35.0], "temperature_c": None},
        storage={"seconds_to_full": None, "write_rate_bps": 0.0},
        network={"status": "network-only", "wifi": None, "interfaces": []},
        recording={"active": False, "id": None, "duration_s": 0.0},
        engine_state="idle", battery=None,
    ))
    values = {key: label.text() for key, label in panel.device_values.items()}
    assert values["cpu"] == "35 %"
    assert values["disk"] == "40.0 GB free · writing 0.0 MB/s"
    assert values["network"] == "network only"
    assert text_colour(panel.device_values["network"]) == WARNING
    assert panel.device_values["network"].toolTip() == "no network interface up"
    assert values["device"] == "<b>rig</b> · 0.4.0 · up 2 h 05 min · idle"
    assert panel.device_values["device"].textFormat() == Qt.TextFormat.PlainText
    assert values["battery"] == "no battery"
    assert text_colour(panel.device_values["battery"]) is None


@pytest.mark.parametrize(("free", "level", "colour"), [
    (10 * GB, "ok", None),
    (4 * GB, "ok", WARNING),  # under 5 GB
    (GB // 2, "ok", ALARM),  # under 1 GB
    (GB + 1, "ok", WARNING),
    (50 * GB, "warning", WARNING),  # the engine's own thresholds are settings
    (3 * GB, "danger", ALARM),
])
def test_free_disk_is_coloured_at_the_thresholds(qtbot, link, free, level, colour):
    panel = health_panel(qtbot, link)
    link.device.emit(snapshot(storage={"free_bytes": free, "level": level}))
    assert text_colour(panel.device_values["disk"]) == colour


@pytest.mark.parametrize(("percent", "charging", "colour"), [
    (50.0, False, None), (15.0, False, WARNING), (5.0, False, ALARM), (5.0, True, None)])
def test_battery_is_coloured_when_low_and_not_charging(qtbot, link, percent, charging, colour):
    panel = health_panel(qtbot, link)
    link.device.emit(snapshot(battery={"percent": percent, "is_charging": charging}))
    assert text_colour(panel.device_values["battery"]) == colour


def test_device_error_and_warnings_are_shown_in_their_colours(qtbot, link):
    panel = health_panel(qtbot, link)
    link.device.emit(snapshot(device_healthy=False, device_error="battery read failed <i2c>",
                             warnings=["disk almost full", "CPU at 85 °C"]))
    text = panel.alerts_label.text()
    assert not panel.alerts_label.isHidden()
    assert "battery read failed &lt;i2c&gt;" in text and ALARM.name() in text
    assert text.index("battery read failed") < text.index("disk almost full")
    assert "CPU at 85 °C" in text and WARNING.name() in text

    link.device.emit(snapshot(device_healthy=False))
    assert "device not healthy" in panel.alerts_label.text()
    link.device.emit(snapshot())
    assert panel.alerts_label.isHidden()


# --- histories -----------------------------------------------------------------------------

def test_histories_hold_the_last_ten_minutes_at_most(qtbot, link):
    panel = health_panel(qtbot, link)
    for second in range(700):
        battery = None if 100 <= second < 200 else {"percent": 90.0 - second / 100}
        link.device.emit(snapshot(time=START + second, battery=battery,
                                 cpu={"usage_percent": float(second % 100)},
                                 storage={"write_rate_bps": 2.0 * MB}))
    for key, series in panel.device_history.items():
        ago, _ = points(series.curve)
        assert 0 < len(ago) <= HISTORY_POINTS, key
        assert ago.max() == 0 and ago.min() >= -HISTORY_SECONDS, key
    ago, cpu = points(panel.device_history["cpu"].curve)
    assert len(ago) == HISTORY_POINTS and cpu[-1] == 99.0
    _, write = points(panel.device_history["disk"].curve)
    assert np.all(write == 2.0)  # MB/s
    assert panel.history_plots["disk"].getViewBox().viewRange()[1] == pytest.approx([0, 2.5])
    ago, _ = points(panel.device_history["battery"].curve)
    assert ago.min() == -HISTORY_SECONDS and len(ago) == 501  # none without a battery
    assert not panel.no_battery.isVisible()

    link.device.emit(snapshot(time=START + 2000, battery=None))  # after a long gap
    assert points(panel.device_history["cpu"].curve)[0].tolist() == [0.0]
    assert len(points(panel.device_history["battery"].curve)[0]) == 0
    assert panel.no_battery.isVisible()

    link.device.emit(snapshot(time=START + 10))  # the clock went back
    assert points(panel.device_history["cpu"].curve)[0].tolist() == [0.0]


def test_fps_history_is_bounded_too(qtbot, link):
    panel = health_panel(qtbot, link)
    for second in range(650):
        link.stats.emit(stats(START + second, [
            {"id": "a", "status": "running", "fps": 30.0, "target_fps": 30.0,
             "frames": 30 * second, "dropped": 0}]))
    ago, fps = points(panel.fps_history["a"].curve)
    assert len(ago) == HISTORY_POINTS and ago.min() >= -HISTORY_SECONDS and ago.max() == 0
    assert np.all(fps == 30.0)


# --- plots as instruments ------------------------------------------------------------------

def shown_panel(qtbot, link: EngineLink) -> HealthPanel:
    """A panel laid out as in a low dock, so the plots have their real sizes."""
    panel = health_panel(qtbot, link)
    panel.resize(1900, 250)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def y_range(plot) -> list[float]:
    return [float(y) for y in plot.getViewBox().viewRange()[1]]


def test_a_spike_does_not_rescale_the_plots(qtbot, link):
    panel = health_panel(qtbot, link)
    link.stats.emit(stats(START, [camera("a", 0.0, 0, status="paused")]))
    bottom, top = y_range(panel.plot)
    assert bottom == 0 and 33 <= top <= 40  # the target and a margin, at least

    for second in range(1, 300):
        burst = second == 150  # late frames handed over at once; a cache flush
        link.stats.emit(stats(START + second, [camera("a", 600.0 if burst else 29.9, 0),
                                               camera("b", 30.0, 0)]))
        link.device.emit(snapshot(time=START + second, cpu={"usage_percent": 30.0},
                                 storage={"write_rate_bps": (250.0 if burst else 2.0) * MB}))
    assert y_range(panel.plot) == pytest.approx([0, 40])  # not 0..660
    assert points(panel.fps_history["a"].curve)[1].max() == 600.0  # drawn, clipped at the top
    assert y_range(panel.history_plots["disk"]) == pytest.approx([0, 2.5])
    assert y_range(panel.history_plots["cpu"]) == [0, 100]

    for second in range(300, 330):  # a lasting change is no spike
        link.stats.emit(stats(START + second, [camera("a", 60.0, 0), camera("b", 30.0, 0)]))
    assert y_range(panel.plot) == pytest.approx([0, 80])


def test_each_curve_shows_its_current_value_beside_its_end(qtbot, link):
    panel = shown_panel(qtbot, link)
    for second, fps in enumerate((29.0, 25.0, 20.0)):
        link.stats.emit(stats(START + second, [camera("a", fps, 0), camera("b", 30.0, 0),
                                               camera("c", 30.0, 0)]))
    link.device.emit(snapshot(time=START + 2))
    series = panel.fps_history
    assert [s.label.text() for s in series.values()] == ["20.0", "30.0", "30.0"]
    assert all(s.label.isVisible() for s in series.values())
    for s in series.values():  # each in its curve's colour
        assert s.label.brush().color() == s.curve.opts["pen"].color()
    view = panel.plot.getViewBox()
    view_rect = view.sceneBoundingRect()
    rects = {camera_id: s.label.sceneBoundingRect() for camera_id, s in series.items()}
    for rect in rects.values():  # right of the view, inside the plot's height
        assert rect.left() >= view_rect.right()
        assert view_rect.top() <= rect.top() and rect.bottom() <= view_rect.bottom()
    end = view.mapViewToScene(QPointF(0, 20.0)).y()
    assert abs(rects["a"].center().y() - end) < 2  # level with the curve's end
    assert not rects["b"].intersects(rects["c"])  # equal values: one above the other

    labels = {key: s.label.text() for key, s in panel.device_history.items()}
    assert labels == {"cpu": "35 %", "memory": "41 %", "disk": "12.5 MB/s", "battery": "87 %"}

    link.stats.emit(stats(START + 3, [camera("a", 600.0, 0), camera("b", 30.0, 0),
                                      camera("c", 30.0, 0)]))
    assert series["a"].label.text() == "600.0"  # off the scale, the label still at the top
    assert series["a"].label.sceneBoundingRect().top() >= view_rect.top()

    link.device.emit(snapshot(time=START + 3, battery=None))
    assert not panel.device_history["battery"].label.isVisible()  # no current value


def test_time_axis_reads_minutes_ago(qtbot, link):
    panel = shown_panel(qtbot, link)
    axis = panel.plot.getAxis("bottom")
    assert axis.tickStrings([-600.0, -300.0, -120.0, 0.0], 1.0, 60.0) == [
        "10 min ago", "5 min ago", "2 min ago", "now"]
    for plot in (panel.plot, *panel.history_plots.values()):
        image = QImage(8, 8, QImage.Format.Format_ARGB32)
        painter = QPainter(image)
        try:
            _, _, texts = plot.getAxis("bottom").generateDrawSpecs(painter)
        finally:
            painter.end()
        drawn = [text for _, _, text in texts]
        # Both edges labelled too: the newest sample is "now", the oldest "10 min ago".
        assert drawn[0] == "10 min ago" and drawn[-1] == "now", drawn
        assert all(text.endswith(" min ago") for text in drawn[:-1]), drawn


# --- cameras ---------------------------------------------------------------------------------

def camera(camera_id: str, fps: float, dropped: int, status: str = "running") -> dict[str, Any]:
    return {"id": camera_id, "status": status, "frames": 1000, "dropped": dropped, "fps": fps,
            "target_fps": 30.0}


def test_cameras_are_coloured_by_frame_rate_and_dropped_frames(qtbot, link):
    panel = health_panel(qtbot, link)
    link.stats.emit(stats(START, [
        camera("fine", 29.0, 10),  # 97 % of the target; 1 % dropped is still fine
        camera("behind", 27.0, 20),  # 90 %; 2 %
        camera("stalling", 21.0, 60),  # 70 %; 6 %
        camera("paused", 0.0, 0, status="paused"),  # slow on purpose
    ]))
    rows = panel.camera_rows
    assert list(rows) == ["fine", "behind", "stalling", "paused"]
    assert [rows[c].fps.text() for c in rows] == ["29.0 / 30", "27.0 / 30", "21.0 / 30",
                                                  "0.0 / 30"]
    assert [rows[c].dropped.text() for c in rows] == ["10 (1.0 %)", "20 (2.0 %)", "60 (6.0 %)",
                                                      "0 (0.0 %)"]
    assert [text_colour(rows[c].fps) for c in rows] == [None, WARNING, ALARM, None]
    assert [text_colour(rows[c].dropped) for c in rows] == [None, WARNING, ALARM, None]
    assert {curve.name() for curve in panel.plot.getPlotItem().listDataItems()} == set(rows)

    link.stats.emit(stats(START + 1, [camera("fine", 30.0, 0)]))
    assert list(panel.camera_rows) == ["fine"]
    assert text_colour(panel.camera_rows["fine"].fps) is None
    assert [curve.name() for curve in panel.plot.getPlotItem().listDataItems()] == ["fine"]
    assert len(points(panel.fps_history["fine"].curve)[0]) == 2  # its history stays


# --- status bar ------------------------------------------------------------------------------

def test_status_bar_shows_battery_and_network(qtbot, tmp_path):
    link = EngineLink(QuietClient())
    window = MainWindow(link, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    link.setParent(window)  # deleted with it, so the window's lambdas on the link go too
    qtbot.addWidget(window)
    indicators = window.device_indicators
    assert indicators.battery.text.text() == "battery —"
    assert indicators.network.text.text() == "network —"
    assert indicators.battery.toolTip() == NOT_REPORTED
    assert indicators.alert.isHidden()

    link.dispatch(snapshot())  # as the engine's events reach the window
    assert indicators.battery.text.text() == "87 %"
    assert indicators.battery.toolTip().startswith("87 % · 8.12 V · on battery")
    assert not indicators.battery.icon.pixmap().isNull()
    assert indicators.network.text.text() == "online"
    assert "Wi-Fi “lab” -58 dBm" in indicators.network.toolTip()
    assert text_colour(indicators.network.text) is None
    assert window.health_panel.device_values["battery"].text() == "87 % · 8.12 V · on battery"

    link.dispatch(snapshot(battery=None, network={"status": "offline", "wifi": None},
                            warnings=["disk almost full", "network down"]))
    assert indicators.battery.text.text() == "no battery"
    assert indicators.network.text.text() == "offline"
    assert text_colour(indicators.network.text) == WARNING
    assert not indicators.alert.isHidden()
    assert indicators.alert.text.text() == "disk almost full (+1 more)"
    assert indicators.alert.toolTip() == "disk almost full\nnetwork down"

    link.dispatch(snapshot(battery={"percent": 8.0}))
    assert indicators.battery.text.text() == "8 %"
    assert text_colour(indicators.battery.text) == ALARM
    assert indicators.alert.isHidden()


def test_status_bar_forgets_the_readings_when_the_engine_is_lost(qtbot, link):
    indicators = DeviceIndicators(link)
    qtbot.addWidget(indicators)
    link.device.emit(snapshot(warnings=["disk almost full"]))
    assert indicators.battery.text.text() == "87 %"
    link.disconnected.emit("socket closed")
    assert indicators.battery.text.text() == "battery —"
    assert indicators.network.text.text() == "network —"
    assert indicators.network.toolTip() == "lost the engine: socket closed"
    assert indicators.alert.isHidden()
