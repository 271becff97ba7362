"""`recorder-gui`: open the workstation window on a running engine, or start one."""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import psutil

# Beside the packages in a checkout, and in the bundle's _internal/ (see packaging/).
ICON = Path(__file__).resolve().parent.parent / "resources" / "recorder-workstation.png"
DESKTOP_ID = "recorder-workstation"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recorder-gui", description=__doc__)
    rig = parser.add_mutually_exclusive_group()
    rig.add_argument("--demo", type=int, default=4, metavar="N",
                     help="start the engine with N synthetic cameras (default 4)")
    rig.add_argument("--rig", metavar="FILE", help="start the engine with this rig file")
    parser.add_argument("--broker", metavar="URL",
                        help="coordinate a rig of several machines on this NATS broker "
                             "(a token as $RECORDER_BROKER_TOKEN) instead of one engine")
    parser.add_argument("--rig-id", default="rig", metavar="NAME",
                        help="with --broker: the rig's name on the broker")
    parser.add_argument("--rig-output", metavar="DIR",
                        help="with --broker: where rig manifests go (default: the "
                             "recordings folder's rig-takes/)")
    parser.add_argument("--record", action="store_true", help="start recording at once")
    parser.add_argument("--quit-after", type=float, metavar="S",
                        help="quit after S seconds (smoke tests), printing display figures")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="save the main window to PATH just before quitting")
    parser.add_argument("--self-test", action="store_true",
                        help="no window: record the demo rig for 3 s with a private engine,"
                             " verify it, exit 0 only if it holds")
    return parser


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    launched_at = time.monotonic()
    args = build_parser().parse_args(argv)
    if args.self_test:
        from engine.self_test import run_self_test

        return 0 if run_self_test() else 1
    if args.broker:
        return _coordinate_rig(args)

    from engine.client import EngineClient, EngineNotRunning, launch_engine
    from engine.wire.paths import runtime_dir

    # Start the engine before importing Qt, so both start up at the same time.
    folder = runtime_dir()
    client: EngineClient | None = None
    engine = None
    engine_args = (
        ["--rig", str(Path(args.rig).resolve())] if args.rig else ["--demo", str(args.demo)]
    )
    try:
        client = EngineClient.connect(folder)
    except EngineNotRunning:
        engine = launch_engine(folder, engine_args)

    import cv2
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    # Tiles scale frames with OpenCV; its worker pool spin-waits between calls and
    # cost the GUI most of a core (measured), stealing it from the cameras.
    cv2.setNumThreads(1)

    from recorder_gui.engine_link import EngineLink
    from recorder_gui.main_window import APP_NAME, MainWindow

    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setWindowIcon(QIcon(str(ICON)))
    app.setDesktopFileName(DESKTOP_ID)  # Wayland matches the window to the .desktop entry
    try:
        if client is None:
            assert engine is not None  # launched above, as no engine answered
            client = EngineClient.await_engine(engine, folder)
    except EngineNotRunning as exc:
        QMessageBox.critical(None, APP_NAME, f"The recording engine could not start:\n{exc}")
        return 1
    link = EngineLink(client, restart=lambda: EngineClient.connect(folder, launch=engine_args))
    window = MainWindow(link, owns_engine=client.launched)
    first_frame: list[float] = []
    window.tiles.firstFrameShown.connect(lambda: first_frame.append(time.monotonic() - launched_at))
    window.show()
    if args.record:
        QTimer.singleShot(1000, window.start_recording)
    if args.quit_after is not None:
        _quit_after(args.quit_after, args.screenshot, window, first_frame)
    code = app.exec()
    # Tear down in a fixed order while Qt is alive: left to the interpreter's exit,
    # widgets and their Python wrappers die in any order, which crashed the process
    # (Fatal Python error: none_dealloc) after recordings under a real display.
    window.deleteLater()
    app.processEvents()
    link.close()  # its client: the one a restart attached, not necessarily the first
    del window, link
    gc.collect()
    return code


def _coordinate_rig(args: argparse.Namespace) -> int:
    """The window of a rig of several machines, as its coordinator on the broker."""
    import os

    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from engine.nodes.broker import BrokerError, BrokerLink
    from engine.nodes.coordinator import RigCoordinator
    from engine.nodes.preview import PreviewReceiver
    from engine.wire.paths import rig_takes_dir
    from recorder_gui.main_window import APP_NAME, FIRST_SIZE, SCREEN_SHARE
    from recorder_gui.rig_window import RigWindow

    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setWindowIcon(QIcon(str(ICON)))
    link = BrokerLink(args.broker, name="recorder GUI coordinator",
                      token=os.environ.get("RECORDER_BROKER_TOKEN"))
    try:
        link.connect()
        coordinator = RigCoordinator(link, args.rig_id)
    except (BrokerError, ValueError) as exc:
        QMessageBox.critical(None, APP_NAME, f"Cannot coordinate the rig:\n{exc}")
        link.close()
        return 1
    previews = PreviewReceiver(link, args.rig_id, watcher=f"gui-{os.getpid()}")
    output = Path(args.rig_output).expanduser() if args.rig_output else rig_takes_dir()
    window = RigWindow(coordinator, previews, output)
    screen = window.screen().availableGeometry()
    window.resize(min(FIRST_SIZE[0], int(screen.width() * SCREEN_SHARE)),
                  min(FIRST_SIZE[1], int(screen.height() * SCREEN_SHARE)))
    window.show()
    code = app.exec()
    window.deleteLater()
    app.processEvents()
    previews.close()
    link.close()
    return code


def _quit_after(seconds: float, screenshot: str | None, window, first_frame: list[float]) -> None:
    """For smoke tests: after `seconds`, save a screenshot, print the display figures
    (publish-to-paint latency, time to first frame, GUI CPU) and close."""
    from PySide6.QtCore import QTimer

    from engine.wire.commands import Stop

    process = psutil.Process()
    process.cpu_percent()  # start the CPU measurement window

    def finish() -> None:
        cpu = process.cpu_percent()
        if screenshot:
            window.grab().save(screenshot)
        latencies = sorted(window.tiles.latencies_ms())
        if latencies:
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            print(f"display latency publish->paint: p50 {statistics.median(latencies):.1f} ms,"
                  f" p95 {p95:.1f} ms over {len(latencies)} frames")
        if first_frame:
            print(f"first frame on screen {first_frame[0]:.2f} s after launch")
        print(f"GUI process CPU {cpu:.1f} % of one core")
        if window.recording:
            window.link.command(Stop(wait=True))
        window.recording = False  # nothing left to ask about
        window.close()

    QTimer.singleShot(int(seconds * 1000), finish)


if __name__ == "__main__":
    sys.exit(main())
