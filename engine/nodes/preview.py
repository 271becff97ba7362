"""Pictures of a node's cameras for a coordinator on another machine: small JPEGs over
the broker, a few a second, and only while someone watches.

Frames stay on their node: the node's shared-memory rings feed its own displays at full
rate. A coordinator showing the whole rig asks for previews (WatchPreview on the rig's
watch subject, renewed within WATCH_LEASE_S); each node then reads its rings' newest
frames, as a display does (never holding up capture), scales them to PREVIEW_WIDTH and
publishes them PREVIEW_HZ times a second. Unwatched, the sender sleeps on its lease.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from engine.ipc.ring import M_FRAME, FrameRing
from engine.nodes.broker import BrokerLink
from engine.wire.nodes import (
    PREVIEW_HZ,
    PREVIEW_WIDTH,
    WATCH_LEASE_S,
    PreviewFrame,
    WatchPreview,
    decode,
    encode,
    node_of,
    rig_subject,
    subject,
)
from engine.wire.registry import WireError

log = logging.getLogger("engine.node")
JPEG_QUALITY = 70


class PreviewSender:
    """Publishes the newest picture of every ring `rings()` lists (the engine's `rings`
    answer) while a WatchPreview lease runs."""

    def __init__(self, link: BrokerLink, rig: str, node: str,
                 rings: Callable[[], list[dict[str, Any]]]) -> None:
        self._link = link
        self._subject = subject(rig, node, "preview")
        self._node = node
        self._rings = rings
        self._watched_until = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._attached: dict[str, tuple[FrameRing, np.ndarray]] = {}  # camera -> ring, buffer
        self._sent: dict[str, int] = {}  # camera -> the frame last sent
        link.listen(rig_subject(rig, "watch"), self._watch)
        self._thread = threading.Thread(target=self._run, name="node-preview", daemon=True)
        self._thread.start()

    def _watch(self, _subject: str, data: bytes) -> None:
        try:
            message = decode(data)
        except WireError:
            return
        if isinstance(message, WatchPreview):
            self._watched_until = time.monotonic() + WATCH_LEASE_S
            self._wake.set()

    def _run(self) -> None:
        period = 1.0 / PREVIEW_HZ
        while not self._stop.is_set():
            if time.monotonic() >= self._watched_until:
                self._detach_all()
                self._wake.clear()
                self._wake.wait()  # unwatched: asleep until a lease (or close)
                continue
            started = time.monotonic()
            try:
                self._send_all()
            except (OSError, ValueError) as exc:  # a ring went away under us: attach again
                log.debug("preview: %s", exc)
                self._detach_all()
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _send_all(self) -> None:
        rings = {ring["camera"]: ring for ring in self._rings()}
        for camera in [c for c in self._attached if c not in rings
                       or rings[c]["ring"] != self._attached[c][0].name]:
            self._detach(camera)
        for camera, ring in rings.items():
            if camera not in self._attached:
                self._attached[camera] = _attach(ring["ring"])
            frame_ring, buffer = self._attached[camera]
            frame_ring.watch()
            meta = frame_ring.read_latest(buffer)
            if meta is None or int(meta[M_FRAME]) == self._sent.get(camera):
                continue
            ok, jpeg = cv2.imencode(".jpg", buffer, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                self._sent[camera] = int(meta[M_FRAME])
                self._link.publish(self._subject, encode(PreviewFrame(
                    node=self._node, camera=camera, frame=int(meta[M_FRAME]),
                    jpeg=base64.b64encode(jpeg.tobytes()).decode())))

    def _detach(self, camera: str) -> None:
        ring, _ = self._attached.pop(camera)
        ring.close()
        self._sent.pop(camera, None)

    def _detach_all(self) -> None:
        for camera in list(self._attached):
            self._detach(camera)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(2.0)
        self._detach_all()


def _attach(name: str) -> tuple[FrameRing, np.ndarray]:
    ring = FrameRing.attach(name, display=True)
    height, width, _ = ring.shape
    scale = min(1.0, PREVIEW_WIDTH / width)
    return ring, np.zeros((max(1, round(height * scale)), max(1, round(width * scale)), 3),
                          np.uint8)


class PreviewReceiver:
    """The newest preview of every camera of the rig (`latest`), asked for by renewing a
    WatchPreview lease; decoded on the broker's thread, read by a display's timer."""

    def __init__(self, link: BrokerLink, rig: str, watcher: str) -> None:
        self._link = link
        self._watch_subject = rig_subject(rig, "watch")
        self._watcher = watcher
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, float, np.ndarray]] = {}  # "node/camera" -> ...
        self._stop = threading.Event()
        link.listen(subject(rig, "*", "preview"), self._heard)
        self._thread = threading.Thread(target=self._renew, name="preview-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while True:
            self._link.publish(self._watch_subject, encode(WatchPreview(watcher=self._watcher)))
            if self._stop.wait(WATCH_LEASE_S / 3):
                return

    def _heard(self, subject_name: str, data: bytes) -> None:
        try:
            message = decode(data)
        except WireError:
            return
        if not isinstance(message, PreviewFrame) or message.node != node_of(subject_name):
            return
        try:
            jpeg = np.frombuffer(base64.b64decode(message.jpeg, validate=True), np.uint8)
        except ValueError:
            return
        image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        if image is not None:
            with self._lock:
                self._latest[f"{message.node}/{message.camera}"] = (
                    message.frame, time.monotonic(), image)

    def latest(self, camera: str) -> tuple[int, float, np.ndarray] | None:
        """(frame number, when it arrived (time.monotonic), BGR picture) of "node/camera"."""
        with self._lock:
            return self._latest.get(camera)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
