"""The window of a rig of several machines: the GUI as the rig's coordinator.

Every node's cameras as tiles (small previews through the broker, a few a second: the
frames stay on their nodes), the nodes with their state and measured clock offset, and
Record / Pause / Stop for the whole rig: one take across the nodes, started and ended on agreed
moments (engine/nodes/rig_take.py), its rig manifest and sync report written beside.

Calls that wait on the broker (a take's start waits for its agreed moment; its end for
every node's files) run on a worker thread; their outcome comes back through a queue a
GUI timer drains, never as a signal from another thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.nodes.broker import BrokerError
from engine.nodes.coordinator import RigCoordinator
from engine.nodes.preview import PreviewReceiver
from engine.nodes.rig_take import RigTake, RigTakeError

REFRESH_MS = 100
NODES_EVERY_S = 1.0
CLOCKS_EVERY_S = 10.0
SIDE_WIDTH = 600
STALE_AFTER_S = 2.0  # a preview older than this is shown as NO SIGNAL
RECORDING_COLOUR = QColor(220, 30, 30)
PAUSED_COLOUR = QColor(235, 190, 20)
NO_SIGNAL_COLOUR = QColor(240, 70, 70)


class PreviewTile(QWidget):
    """One camera of one node: its newest preview, its name, and REC or NO SIGNAL."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setMinimumSize(160, 120)
        self.frame = -1
        self.recording = False
        self.paused = False
        self.no_signal = True
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # the QImage's memory

    def show_preview(self, preview: tuple[int, float, np.ndarray] | None) -> None:
        stale = preview is None or time.monotonic() - preview[1] > STALE_AFTER_S
        if preview is not None and preview[0] != self.frame:
            self.frame = preview[0]
            self._pixels = np.ascontiguousarray(preview[2])
            height, width, _ = self._pixels.shape
            self._image = QImage(self._pixels.data, width, height, width * 3,
                                 QImage.Format.Format_BGR888)
            self.update()
        if stale != self.no_signal:
            self.no_signal = stale
            self.update()

    def set_recording(self, recording: bool, paused: bool = False) -> None:
        if (recording, paused) != (self.recording, self.paused):
            self.recording, self.paused = recording, paused
            self.update()

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 20))
        if self._image is not None:
            scaled = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(self.rect().center())
            painter.drawImage(target, self._image)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(self.rect().adjusted(8, 6, -8, -6),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self.name)
        badge, colour = self.badge()
        if badge:
            painter.setPen(colour)
            painter.drawText(self.rect().adjusted(8, 6, -8, -6),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, badge)
        if self.recording:
            painter.setPen(RECORDING_COLOUR)
            painter.drawRect(self.rect().adjusted(1, 1, -2, -2))

    def badge(self) -> tuple[str, QColor]:
        if self.no_signal:
            return "NO SIGNAL", NO_SIGNAL_COLOUR
        if self.recording and self.paused:
            return "❚❚ PAUSED", PAUSED_COLOUR
        if self.recording:
            return "● REC", RECORDING_COLOUR
        return "", QColor()


class RigWindow(QMainWindow):
    """The rig's coordinator: tiles of every node's cameras, the nodes, Record / Stop."""

    def __init__(self, coordinator: RigCoordinator, previews: PreviewReceiver, output: Path,
                 *, lead_s: float = 0.5) -> None:
        super().__init__()
        self.coordinator = coordinator
        self.previews = previews
        self.output = output
        self.lead_s = lead_s
        self.setWindowTitle(f"Rig {coordinator.rig} — recorder workstation")
        self.take: RigTake | None = None
        self.recording = False
        self.paused = False  # writing paused on every node; the cameras run on
        self.busy = False  # a start or an end is under way on the worker
        self.last_manifest: dict[str, Any] | None = None
        self.tiles: dict[str, PreviewTile] = {}
        self._nodes: dict[str, Any] = {}
        self._clocks: dict[str, str] = {}
        self._outcomes: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._nodes_at = 0.0
        self._clocks_at = 0.0

        bar = QToolBar("Rig", self)
        bar.setMovable(False)
        self.record_action = QAction("● Record rig", self)
        self.record_action.triggered.connect(self.start_recording)
        self.pause_action = QAction("❚❚ Pause", self)
        self.pause_action.triggered.connect(self.toggle_pause)
        self.stop_action = QAction("■ Stop", self)
        self.stop_action.triggered.connect(self.stop_recording)
        bar.addAction(self.record_action)
        bar.addAction(self.pause_action)
        bar.addAction(self.stop_action)
        self.addToolBar(bar)

        self._grid_widget = QWidget()
        self._grid = QGridLayout(self._grid_widget)
        self._grid.setSpacing(4)
        self.nodes_table = QTableWidget(0, 5)
        self.nodes_table.setHorizontalHeaderLabels(
            ["Node", "State", "Health", "Clock offset ms", "Take"])
        self.nodes_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.nodes_table.horizontalHeader().setStretchLastSection(True)
        self.nodes_table.verticalHeader().hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.nodes_table, 1)
        side_layout.addWidget(self.status)
        splitter = QSplitter()
        splitter.addWidget(self._grid_widget)
        splitter.addWidget(side)
        side.setMinimumWidth(SIDE_WIDTH)  # the nodes' table unclipped; the tiles get the rest
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        self.setCentralWidget(splitter)

        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self._refresh)
        self._timer.start()
        self._update_actions()
        self._refresh()

    # --- what the nodes say -----------------------------------------------------------

    def _refresh(self) -> None:
        while True:
            try:
                self._outcomes.get_nowait()()
            except queue.Empty:
                break
        now = time.monotonic()
        if now - self._nodes_at >= NODES_EVERY_S:
            self._nodes_at = now
            self._nodes = self.coordinator.nodes(wait_s=0)
            self._arrange()
            self._fill_table()
            self._adopt_running_take()
        if now - self._clocks_at >= CLOCKS_EVERY_S and self._nodes and not self.busy:
            self._clocks_at = now
            self._in_background(self._measure_clocks, list(self._nodes))
        for name, tile in self.tiles.items():
            tile.show_preview(self.previews.latest(name))
            tile.set_recording(self.recording, self.paused)
        if not self.busy and not self.recording:
            self._show_idle()

    def _arrange(self) -> None:
        names = [f"{node}/{camera['id']}" for node, status in self._nodes.items()
                 for camera in status.cameras]
        if names == list(self.tiles):
            return
        for tile in self.tiles.values():
            self._grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = {name: PreviewTile(name) for name in names}
        columns = max(1, int(np.ceil(np.sqrt(len(names)))))
        for index, tile in enumerate(self.tiles.values()):
            self._grid.addWidget(tile, index // columns, index % columns)

    def _fill_table(self) -> None:
        self.nodes_table.setRowCount(len(self._nodes))
        for row, (node, status) in enumerate(self._nodes.items()):
            recording = status.recording or {}
            take = Path(recording["folder"]).name if recording.get("folder") else "—"
            health = status.health
            for column, text in enumerate((node, status.state, health_text(health),
                                           self._clocks.get(node, "…"), take)):
                item = QTableWidgetItem(text)
                if column == 2:
                    item.setToolTip("\n".join([health.get("error") or "",
                                                *health.get("warnings", [])]).strip())
                    if not health.get("healthy", True):
                        item.setForeground(NO_SIGNAL_COLOUR)
                self.nodes_table.setItem(row, column, item)

    def _adopt_running_take(self) -> None:
        """Nodes recording a rig take that this window did not start (its coordinator went
        away): re-attach to it from its manifest, so Stop ends it on every node."""
        if self.take is not None or self.busy:
            return
        takes = {(status.recording or {}).get("rig_take", {}).get("take")
                 for status in self._nodes.values() if status.recording}
        takes.discard(None)
        if len(takes) != 1:
            return
        name = str(takes.pop())
        try:
            take = RigTake.open(self.coordinator, self.output / name)
        except RigTakeError as exc:
            self.status.setText(f"The nodes record rig take {name}, which this window cannot "
                                f"stop: {exc}")
            return
        if take.manifest.get("status") != "recording":
            return  # it has ended: the nodes' statuses, sent every few seconds, are behind
        self.take, self.recording, self.last_manifest = take, True, None
        self.paused = bool(take.manifest.get("pauses") and take.manifest["pauses"][-1][1] is None)
        self.pause_action.setText("▶ Resume" if self.paused else "❚❚ Pause")
        self._update_actions()
        self.status.setText(f"● Recording rig take {name} (re-attached)")

    def _measure_clocks(self, nodes: list[str]) -> Callable[[], None]:
        readings = {}
        for node in nodes:
            try:
                clock = self.coordinator.clock(node)
                readings[node] = (f"{clock.offset_ns / 1e6:+.3f} "
                                  f"± {clock.uncertainty_ns / 1e6:.3f}")
            except BrokerError as exc:
                readings[node] = f"unknown ({exc})"
        return lambda: self._clocks.update(readings)

    def _show_idle(self) -> None:
        if self.last_manifest is None:
            cameras = sum(len(status.cameras) for status in self._nodes.values())
            self.status.setText(f"{len(self._nodes)} nodes, {cameras} cameras · not recording"
                                if self._nodes else "No node of this rig on the broker yet")

    # --- Record and Stop ----------------------------------------------------------------

    def start_recording(self) -> None:
        if self.busy or self.recording:
            return
        self.busy = True
        self.last_manifest = None
        self.status.setText("Starting the take on every node …")
        self._update_actions()
        self._in_background(self._start, len(self._nodes))

    def _start(self, nodes: int) -> Callable[[], None]:
        try:
            take = RigTake.start(self.coordinator, self.output, lead_s=self.lead_s,
                                 expect=nodes)
        except (BrokerError, RigTakeError) as exc:
            message = str(exc)
            return lambda: self._finished_busy(f"Not recording: {message}")

        def started() -> None:
            self.take, self.recording = take, True
            self._finished_busy(f"● Recording rig take {take.manifest['name']} on "
                                f"{len(take.manifest['nodes'])} nodes")
        return started

    def toggle_pause(self) -> None:
        if self.busy or not self.recording or self.take is None:
            return
        self.busy = True
        self._update_actions()
        self._in_background(self._pause, self.take, not self.paused)

    def _pause(self, take: RigTake, pause: bool) -> Callable[[], None]:
        try:
            frame_set = take.pause(self.lead_s) if pause else take.resume(self.lead_s)
        except (BrokerError, RigTakeError) as exc:
            message = str(exc)
            return lambda: self._finished_busy(f"{'Pause' if pause else 'Resume'} failed: "
                                               f"{message}")

        def done() -> None:
            self.paused = pause
            self.pause_action.setText("▶ Resume" if pause else "❚❚ Pause")
            self._finished_busy(f"{'❚❚ Paused' if pause else '● Recording'} rig take "
                                f"{take.manifest['name']} from frame set {frame_set} on "
                                "every node")
        return done

    def stop_recording(self) -> None:
        if self.busy or not self.recording or self.take is None:
            return
        self.busy = True
        self.status.setText("Stopping every node at one frame set …")
        self._update_actions()
        self._in_background(self._stop, self.take)

    def _stop(self, take: RigTake) -> Callable[[], None]:
        try:
            take.stop(self.lead_s)
            manifest = take.finish()
        except (BrokerError, RigTakeError) as exc:
            message = str(exc)
            return lambda: self._finished_busy(f"Stopping failed: {message}")

        def stopped() -> None:
            self.recording, self.take, self.last_manifest = False, None, manifest
            self.paused = False
            self.pause_action.setText("❚❚ Pause")
            self._finished_busy(saved_text(take.folder, manifest))
        return stopped

    def _finished_busy(self, text: str) -> None:
        self.busy = False
        self.status.setText(text)
        self._update_actions()

    def _update_actions(self) -> None:
        self.record_action.setEnabled(not self.busy and not self.recording)
        self.stop_action.setEnabled(not self.busy and self.recording)
        self.pause_action.setEnabled(not self.busy and self.recording)

    def _in_background(self, work: Callable[..., Callable[[], None]], *args: Any) -> None:
        threading.Thread(target=lambda: self._outcomes.put(work(*args)), daemon=True,
                         name="rig-window").start()

    def closeEvent(self, event: Any) -> None:
        self._timer.stop()
        super().closeEvent(event)


def health_text(health: dict[str, Any]) -> str:
    """'CPU 34% · 120 GB free' (and the battery's charge where there is one)."""
    parts = []
    if health.get("cpu_percent") is not None:
        parts.append(f"CPU {health['cpu_percent']:.0f}%")
    if health.get("disk_free_bytes") is not None:
        parts.append(f"{health['disk_free_bytes'] / 1e9:.0f} GB free")
    if health.get("battery_percent") is not None:
        parts.append(f"battery {health['battery_percent']:.0f}%")
    return (" · ".join(parts) or "—") + ("" if health.get("healthy", True) else " ⚠")


def saved_text(folder: Path, manifest: dict[str, Any]) -> str:
    """'Saved rig take <folder>: 6 cameras × 600 frames, ...' with the cross-node sync."""
    frames = [camera.get("frames") for entry in manifest["nodes"]
              for camera in entry.get("cameras", [])]
    counts = f"{len(frames)} cameras × {frames[0]} frames" if len(set(frames)) == 1 \
        else f"frames {', '.join(map(str, frames))}"
    sync = manifest.get("sync") or {}
    spread = sync.get("spread_ms") or {}
    lost = [entry["node"] for entry in manifest["nodes"] if entry["status"] == "lost"]
    return (f"Saved rig take {folder}: {counts}"
            + (f", cross-node spread p99 {spread['p99']} ms" if spread else "")
            + (f"; lost: {', '.join(lost)}" if lost else ""))
