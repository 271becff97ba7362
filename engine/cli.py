"""`recorder-engine`: the engine from a terminal, without Qt."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine.capture.group import CaptureGroup, GroupError
from engine.capture.spec import DEFAULT_FPS, CameraSpec
from engine.recording.encoder import CODECS
from engine.recording.errors import RecordingError
from engine.sources.base import SettingRejected, SourceError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from None
    return width, height


def camera_specs(args: argparse.Namespace) -> list[CameraSpec]:
    """cam0, cam1, ... from --demo N (synthetic) or the --camera sources in order."""
    sources = ["synthetic"] * args.demo if args.demo else list(args.camera)
    width, height = args.size
    extra = {"paced": False} if getattr(args, "unpaced", False) else {}
    return [
        CameraSpec(f"cam{i}", source, width, height, args.fps, dict(extra))
        for i, source in enumerate(sources)
    ]


def _stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM end the wait; the recording is then stopped and finalized."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        print(f"\n{signal.Signals(signum).name}: stopping and finalizing ...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def _print_event(event: dict[str, Any]) -> None:
    if event["event"] in ("camera_failed", "error"):
        print(f"error: {event.get('camera', '')} {event['message']}".strip(), file=sys.stderr)


def cmd_record(args: argparse.Namespace) -> int:
    stop = _stop_on_signals()
    group = CaptureGroup(camera_specs(args), on_event=_print_event)
    with group:
        recording = group.start_recording(Path(args.output), args.codec, args.name)
        print(f"recording {len(group.camera_ids())} camera(s) to {recording.folder}", flush=True)
        deadline = time.monotonic() + args.seconds
        while not stop.is_set() and not recording.done.is_set():
            stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
        recording = group.stop_recording() if not recording.done.is_set() else recording
    print(format_summary(recording.manifest))
    return EXIT_OK if recording.status == "finalized" else EXIT_FAILED


def format_summary(manifest: dict[str, Any]) -> str:
    lines = [f"recording  {manifest['name']}  status: {manifest['status']}"]
    lines.append(f"{'camera':<12}{'frames':>8}{'dropped':>9}")
    for camera in manifest["cameras"]:
        lines.append(f"{camera['id']:<12}{camera['frames'] or 0:>8}{camera['dropped'] or 0:>9}")
    sync = manifest.get("sync") or {}
    if sync:
        lines.append(
            f"grab spread ms  p50 {sync['p50_ms']:.3f}  p99 {sync['p99_ms']:.3f}  "
            f"max {sync['max_ms']:.3f}  ({sync['frame_sets']} frame sets)"
        )
    lines.extend(f"error: {error}" for error in manifest.get("errors", []))
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.recording.verify import verify_recording

    report = verify_recording(Path(args.recording))
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_cameras(args: argparse.Namespace) -> int:
    from engine.sources.discovery import list_cameras

    cameras = list_cameras()
    if args.json:
        print(json.dumps(cameras, indent=2))
        return EXIT_OK
    for camera in cameras:
        print(f"{camera['source']:<16}{camera['kind']:<11}{camera.get('description', '')}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recorder-engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    record = commands.add_parser("record", help="record cameras in lock-step for a while")
    chosen = record.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--demo", type=int, metavar="N", help="N synthetic cameras")
    chosen.add_argument("--camera", action="append", metavar="SOURCE",
                        help="a source: synthetic, 0, /dev/video0, a file, http(s):// or rtsp://")
    record.add_argument("--size", type=parse_size, default=(640, 480), metavar="WxH")
    record.add_argument("--fps", type=float, default=DEFAULT_FPS)
    record.add_argument("--codec", choices=CODECS, default="h264")
    record.add_argument("--seconds", type=float, required=True)
    record.add_argument("--output", required=True, metavar="DIR")
    record.add_argument("--name", help="recording folder name (default: the local time)")
    record.set_defaults(handler=cmd_record)

    verify = commands.add_parser("verify", help="check that every file holds the same frames")
    verify.add_argument("recording", metavar="RECORDING_DIR")
    verify.set_defaults(handler=cmd_verify)

    cameras = commands.add_parser("cameras", help="list the sources that can be found")
    cameras.add_argument("--json", action="store_true")
    cameras.set_defaults(handler=cmd_cameras)

    bench = commands.add_parser("bench", help="measure capture, gating, publishing and encoding")
    bench.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    bench.add_argument("--seconds", type=float, default=4.0, help="seconds per capture case")
    bench.add_argument("--record-seconds", type=float, default=60.0,
                       help="length of the 4 x 1280x720 H.264 recording case (0 skips it)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (GroupError, RecordingError, SourceError, SettingRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
