"""Live camera tiles: one timer pulls the newest frame of every ring and repaints.

Frames never come through signals: each tile attaches to its camera's shared-memory
ring and copies the newest published frame (seqlock-checked) into its own buffer,
which a QImage wraps with explicit bytes-per-line. Reading never blocks capture.
A tile's buffer is the size the tile shows: the ring scales the frame into it while
copying, so painting needs no scaling and four HD cameras stay cheap to display (a
zoom view asks for every pixel).

A tile whose ring stops advancing says NO SIGNAL within NO_SIGNAL_AFTER_S (longer for
a slow camera), unless the preview is frozen on purpose: a stale picture is never
shown as live.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QWidget

from engine.ipc.ring import M_AFTER_PUBLISH, M_FRAME, FrameRing
from engine.wire.status import CameraStatus

DISPLAY_HZ = 30
LATENCY_SAMPLES = 600
BORDER_PX = 4
RECORDING_COLOUR = QColor(220, 30, 30)
PAUSED_COLOUR = QColor(235, 190, 20)
NO_SIGNAL_COLOUR = QColor(240, 70, 70)
NO_SIGNAL_AFTER_S = 0.5  # without a new frame; at least NO_SIGNAL_PERIODS of the camera's
NO_SIGNAL_PERIODS = 4
# A camera recorded by copy: only its keyframes are decoded, so its picture changes once
# per keyframe interval while its frames come at full rate.
COPY_NOTE = "recorded by copy · picture at each keyframe"


class CameraTile(QWidget):
    """One camera: its newest frame, name, live fps, dropped frames and status."""

    doubleClicked = Signal(str)

    def __init__(self, camera_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.camera_id = camera_id
        self.setMinimumSize(160, 120)
        self._ring: FrameRing | None = None
        self._ring_name = ""
        self._buffer: np.ndarray | None = None
        self._image: QImage | None = None
        self._last_frame = -1  # the frame shown
        self._last_latest = -1  # the newest frame the ring had at the last look
        self._published_ns = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.frames_shown = 0
        self.fps = 0.0
        self.dropped = 0
        self.status = "stopped"
        self.recording = False
        self.paused = False
        self.frozen = False  # the cameras are held on purpose: a still picture is expected
        self._advanced_at = time.monotonic()
        self._no_signal = False
        self._full_resolution = False

    # --- the ring ----------------------------------------------------------------

    def attach(self, ring: dict[str, Any]) -> None:
        """(Re-)attach to a camera's ring; a no-op if it is the ring already shown."""
        if ring["ring"] == self._ring_name:
            return
        self.detach()
        self._ring = FrameRing.attach(ring["ring"], display=True)
        self._ring_name = ring["ring"]
        self._allocate(force=True)

    def _allocate(self, force: bool = False) -> None:
        """Size the buffer to what the tile shows (never larger than the frame)."""
        if self._ring is None:
            return
        height, width, _ = self._ring.shape  # a mono camera's ring: read_latest shows gray
        if self._full_resolution:
            rows, columns = height, width
        else:
            area = self.rect().adjusted(BORDER_PX, BORDER_PX, -BORDER_PX, -BORDER_PX)
            shown = _fit(width, height, area)
            rows, columns = min(height, max(1, shown.height())), min(width, max(1, shown.width()))
        if self._buffer is not None and self._buffer.shape[:2] == (rows, columns) and not force:
            return
        self._buffer = np.zeros((rows, columns, 3), np.uint8)
        self._image = QImage(self._buffer.data, columns, rows, columns * 3,
                             QImage.Format.Format_BGR888)
        self._last_frame = -1
        self._last_latest = -1

    def set_full_resolution(self, full: bool) -> None:
        """Every pixel while a zoom view shows this camera."""
        self._full_resolution = full
        self._allocate()

    def resizeEvent(self, _event: Any) -> None:
        self._allocate()

    def detach(self) -> None:
        self._image = None
        self._buffer = None
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._ring_name = ""

    def pull(self) -> bool:
        """Copy the newest frame if there is a new one; True when the tile needs a repaint."""
        if self._ring is None or self._buffer is None:
            return False
        latest = self._ring.latest  # the camera delivers (a copied camera: packets)
        if latest == self._last_latest:
            self._check_signal()
        else:
            self._last_latest = latest
            self._advanced_at = time.monotonic()
            if self._no_signal:
                self._no_signal = False
                self.update()
        self._ring.watch()
        if self._ring.shown == self._last_frame:
            return False
        meta = self._ring.read_latest(self._buffer)
        if meta is None:
            return False
        self._last_frame = int(meta[M_FRAME])
        self._published_ns = int(meta[M_AFTER_PUBLISH])
        self.update()
        return True

    @property
    def no_signal(self) -> bool:
        """The ring stopped advancing while the camera should be delivering."""
        return self._no_signal

    def _check_signal(self) -> None:
        limit = max(NO_SIGNAL_AFTER_S, NO_SIGNAL_PERIODS / self.fps if self.fps > 0 else 0.0)
        held = self.frozen or self.status in (CameraStatus.PAUSED, CameraStatus.STOPPED)
        stale = not held and time.monotonic() - self._advanced_at > limit
        if stale != self._no_signal:
            self._no_signal = stale
            self.update()

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self._advanced_at = time.monotonic()  # a release starts the wait afresh
        self._check_signal()

    def image(self) -> QImage | None:
        return self._image

    @property
    def frame_number(self) -> int:
        return self._last_frame

    # --- painting ----------------------------------------------------------------

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        inner = self.rect().adjusted(BORDER_PX, BORDER_PX, -BORDER_PX, -BORDER_PX)
        if self._image is not None and self._last_frame >= 0:
            target = _fit(self._image.width(), self._image.height(), inner)
            painter.drawImage(target, self._image)
            if self._published_ns:
                self.latencies_ms.append((time.monotonic_ns() - self._published_ns) / 1e6)
                self._published_ns = 0
                self.frames_shown += 1
        else:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "waiting for frames…")
        if self._no_signal:
            painter.fillRect(inner, QColor(0, 0, 0, 170))
            font = QFont(self.font())
            font.setPointSize(max(12, min(28, inner.height() // 10)))
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(NO_SIGNAL_COLOUR)
            painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "NO SIGNAL")
        self._paint_overlay(painter, inner)
        if self.recording or self.paused:
            pen = QPen(PAUSED_COLOUR if self.paused else RECORDING_COLOUR, BORDER_PX)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            half = BORDER_PX // 2
            painter.drawRect(self.rect().adjusted(half, half, -half - 1, -half - 1))
        painter.end()

    def _paint_overlay(self, painter: QPainter, inner: QRect) -> None:
        font = QFont(self.font())
        font.setPointSize(max(8, font.pointSize()))
        painter.setFont(font)
        fps = 0.0 if self._no_signal else self.fps
        line = f"{self.camera_id}   {fps:5.1f} fps   dropped {self.dropped}"
        metrics = painter.fontMetrics()
        bar = QRect(inner.left(), inner.top(), inner.width(), metrics.height() + 8)
        painter.fillRect(bar, QColor(0, 0, 0, 150))
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(bar.adjusted(8, 0, -8, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, line)
        badge, colour = self.badge()
        painter.setPen(colour)
        painter.drawText(bar.adjusted(8, 0, -8, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, badge)
        if self._ring is not None and self._ring.packets:
            footer = QRect(inner.left(), inner.bottom() - bar.height() + 1, inner.width(),
                           bar.height())
            painter.fillRect(footer, QColor(0, 0, 0, 150))
            painter.setPen(QColor(240, 240, 240))
            painter.drawText(footer.adjusted(8, 0, -8, 0),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             COPY_NOTE)

    def badge(self) -> tuple[str, QColor]:
        """What the tile's corner says: NO SIGNAL, then the take (REC / PAUSED), then the
        camera's own status when it is not simply running."""
        if self._no_signal:
            return "NO SIGNAL", NO_SIGNAL_COLOUR
        if self.status == CameraStatus.RUNNING and self.paused:
            return "❚❚ PAUSED", PAUSED_COLOUR
        if self.status == CameraStatus.RUNNING and self.recording:
            return "● REC", RECORDING_COLOUR
        if self.frozen:
            return "FROZEN", PAUSED_COLOUR
        return self.status.upper(), QColor(CameraStatus.colour_of(self.status))

    def mouseDoubleClickEvent(self, _event: Any) -> None:
        self.doubleClicked.emit(self.camera_id)


def _fit(width: int, height: int, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in area."""
    scale = min(area.width() / width, area.height() / height)
    w, h = int(width * scale), int(height * scale)
    return QRect(area.left() + (area.width() - w) // 2, area.top() + (area.height() - h) // 2,
                 w, h)


class TileGrid(QWidget):
    """Every camera's tile in a grid, repainted by one timer at DISPLAY_HZ."""

    tileDoubleClicked = Signal(str)
    firstFrameShown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[str, CameraTile] = {}
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.setSpacing(4)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / DISPLAY_HZ))
        self._timer.timeout.connect(self.pull)
        self._timer.start()
        self._first_shown = False

    def set_rings(self, rings: list[dict[str, Any]]) -> None:
        """Show exactly these cameras, re-attaching tiles whose ring was re-created."""
        wanted = {ring["camera"]: ring for ring in rings}
        for camera_id in [c for c in self.tiles if c not in wanted]:
            gone = self.tiles.pop(camera_id)
            gone.detach()
            self._layout.removeWidget(gone)
            gone.deleteLater()
        for camera_id, ring in wanted.items():
            tile = self.tiles.get(camera_id)
            if tile is None:
                tile = CameraTile(camera_id, self)
                tile.doubleClicked.connect(self.tileDoubleClicked)
                self.tiles[camera_id] = tile
            tile.attach(ring)
        self._arrange()

    def _arrange(self) -> None:
        columns = max(1, int(np.ceil(np.sqrt(len(self.tiles)))))
        for position, camera_id in enumerate(sorted(self.tiles)):
            self._layout.addWidget(self.tiles[camera_id], position // columns,
                                   position % columns)

    def pull(self) -> None:
        shown = False
        for tile in self.tiles.values():
            shown |= tile.pull()
        if shown and not self._first_shown:
            self._first_shown = True
            self.firstFrameShown.emit()

    def set_recording(self, recording: bool, paused: bool) -> None:
        for tile in self.tiles.values():
            tile.recording, tile.paused = recording, paused
            tile.update()

    def set_frozen(self, frozen: bool) -> None:
        """The cameras are held (Freeze preview), so still pictures are no loss of signal."""
        for tile in self.tiles.values():
            tile.set_frozen(frozen)

    def set_stats(self, cameras: list[dict[str, Any]]) -> None:
        """Every figure a tile shows, repainted now (not only with the next frame)."""
        for camera in cameras:
            tile = self.tiles.get(camera["id"])
            if tile is not None:
                tile.fps = float(camera.get("fps") or 0.0)
                tile.dropped = int(camera.get("dropped") or 0)
                tile.status = str(camera.get("status", "stopped"))
                tile.update()

    def latencies_ms(self) -> list[float]:
        return [value for tile in self.tiles.values() for value in tile.latencies_ms]

    def detach_all(self) -> None:
        self._timer.stop()
        for tile in self.tiles.values():
            tile.detach()
