"""`recorder-engine`: the engine from a terminal, without Qt.

Conventions every sub-command keeps: `--json` puts one JSON document on stdout and
nothing else there (messages go to stderr); long jobs draw a progress bar on stderr
only when it is a terminal (engine/cli_progress.py); the exit code is EXIT_OK,
EXIT_FAILED (the job did not succeed: a camera that cannot be opened, a recording that
does not verify or recover, an engine that is not running or refuses), EXIT_USAGE (the
command line is wrong) or EXIT_INTERRUPTED (`serve` ended by a second signal).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from engine import __version__
from engine.capture.group import CaptureGroup, GroupError
from engine.cli_progress import progress_bar
from engine.client import EngineCommandError, EngineNotRunning
from engine.export import FORMATS, ExportError, export_take
from engine.recording.encoder import DEFAULT_PRESET, X264_PRESETS
from engine.recording.errors import RecordingError
from engine.recording.sync_tolerance import sync_held
from engine.rig import (
    DeviceOptions,
    RecordingOptions,
    Rig,
    RigError,
    demo_camera_settings,
    load_rig,
)
from engine.service.server import EngineAlreadyRunning
from engine.sources.base import SettingRejected, SourceError
from engine.sources.synthetic import CONTENTS
from engine.specs import (
    CODEC_CHOICES,
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    NETWORK_SCHEMES,
    TRIGGERS,
    CameraSpec,
    SensorSpec,
    with_trigger,
)
from engine.system.disk_guard import GB, DiskGuard, LowDiskError
from engine.wire.commands import COMMANDS, Command
from engine.wire.events import AssemblyProgress, CameraFailed, Error, Event

if TYPE_CHECKING:  # the rig's coordinator is imported only by the commands that use it
    from engine.nodes.coordinator import RigCoordinator
    from engine.nodes.rig_take import RigTake

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for "ended by a signal"
EXIT_CODES = f"""exit codes:
  {EXIT_OK}    done
  {EXIT_FAILED}    failed: a camera cannot be opened, a recording does not verify or recover,
       a rig file is wrong, too little free space, the engine is not running or refused
  {EXIT_USAGE}    the command line is wrong
  {EXIT_INTERRUPTED}  serve: ended at once by a second Ctrl-C or SIGTERM"""
RECORD_EXAMPLES = """examples:
  recorder-engine record --demo 4 --size 1280x720 --seconds 60 --output ~/recordings
  recorder-engine record --camera /dev/video0@1920x1080 --camera /dev/video2 --size 1280x720 \\
                         --seconds 600          (video0 at 1920x1080, video2 at 1280x720)
  recorder-engine record --rig my-rig.toml --codec mjpeg --seconds 600
                         (the rig's cameras and [recording] options, its codec replaced)"""
PACKAGE = "recorder-workstation"


def version() -> str:
    """The installed package's version; the engine's own where there is no package
    metadata (a source tree never installed)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return __version__


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from None
    return width, height


def positive_ms(text: str) -> float:
    """A --sync-tolerance-ms value: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of ms, not {text!r}")
    return value


def parse_camera(text: str) -> tuple[str, tuple[int, int] | None]:
    """A --camera value: SOURCE, or SOURCE@WxH for a size of its own. Only a final @WxH is
    a size, so the user:password@ of a URL stays part of it."""
    source, at, size = text.rpartition("@")
    if at and source and re.fullmatch(r"\d+x\d+", size, re.IGNORECASE):
        return source, parse_size(size)
    return text, None


def camera_specs(args: argparse.Namespace, rig: Rig | None) -> list[CameraSpec]:
    """The cameras to record: the rig's (--size and --fps, if given, replace theirs), or
    cam0, cam1, ... from --demo N (synthetic, free-running like the demo rig's cameras)
    or the --camera sources in order (each at its own @WxH, else --size)."""
    if rig is not None:
        size = dict(zip(("width", "height"), args.size, strict=True)) if args.size else {}
        rate = {} if args.fps is None else {"fps": args.fps}
        return [dataclasses.replace(spec, **size, **rate) for spec in rig.cameras]
    width, height = args.size or (DEFAULT_WIDTH, DEFAULT_HEIGHT)
    fps = DEFAULT_FPS if args.fps is None else args.fps
    if args.demo:
        return [CameraSpec(f"cam{i}", "synthetic", width, height, fps,
                           demo_camera_settings(i) | {"content": args.content})
                for i in range(args.demo)]
    cameras = []
    for i, (source, size) in enumerate(args.camera):
        camera_width, camera_height = size or (width, height)
        cameras.append(CameraSpec(f"cam{i}", source, camera_width, camera_height, fps))
    return cameras


def sensor_specs(sources: list[str]) -> list[SensorSpec]:
    """Name sensors after their kind: imu, serial, imu2, ..."""
    specs, seen = [], set()
    for source in sources:
        base = source.partition(":")[0] or "sensor"
        name, number = base, 2
        while name in seen:
            name, number = f"{base}{number}", number + 1
        seen.add(name)
        specs.append(SensorSpec(name, source))
    return specs


def _stop_on_signals() -> threading.Event:
    """Ctrl-C and SIGTERM end the wait; the recording is then stopped and finalized."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        print(f"\n{signal.Signals(signum).name}: stopping and finalizing ...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def _print_event(event: Event) -> None:
    if isinstance(event, CameraFailed):
        print(f"error: {event.camera} {event.message}", file=sys.stderr)
    elif isinstance(event, Error):
        print(f"error: {event.message}", file=sys.stderr)


def cmd_record(args: argparse.Namespace) -> int:
    """Record for --seconds (or until Ctrl-C / SIGTERM). With --rig, the rig's cameras,
    sensors, [recording] options and disk thresholds, each replaced by the option of the
    command line that names it (auto_resume is the engine's: a `record` ends with its
    take)."""
    rig = load_rig(Path(args.rig)) if args.rig else None
    options = rig.recording if rig else RecordingOptions()
    device = rig.device if rig else DeviceOptions()
    stop_below_gb = (device.disk_stop_below_gb if args.disk_stop_below_gb is None
                     else args.disk_stop_below_gb)
    guard = DiskGuard(warn_below_bytes=max(device.disk_warn_below_gb, stop_below_gb) * GB,
                      stop_below_bytes=stop_below_gb * GB)
    sensors = sensor_specs(args.sensor) if args.sensor else (rig.sensors if rig else [])
    stop = _stop_on_signals()
    show_assembly: Callable[[float], None] = _ignore_progress

    def on_event(event: Event) -> None:
        if isinstance(event, AssemblyProgress):
            show_assembly(event.fraction)
        else:
            _print_event(event)

    group = CaptureGroup(
        with_trigger(camera_specs(args, rig), args.trigger or options.trigger),
        sensors=sensors, on_event=on_event, disk_guard=guard,
        start_timeout_s=options.device_ready_timeout_s,
    )
    with group:
        recording = group.start_recording(
            Path(args.output).expanduser() if args.output else options.output_dir,
            args.codec or options.codec, args.name, multitrack=options.multitrack,
            h264_preset=args.preset or options.h264_preset,
            encoder_threads=options.encoder_threads,
        )
        if options.sync_tolerance_ms is not None:
            recording.set_sync_tolerance(options.sync_tolerance_ms)
        print(f"recording {len(group.camera_ids())} camera(s) to {recording.folder}",
              file=sys.stderr if args.json else sys.stdout, flush=True)
        deadline = time.monotonic() + args.seconds
        while not stop.is_set() and not recording.done.is_set():
            stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
        if not recording.done.is_set():  # on_event draws the assembly's progress on the bar
            with progress_bar("finishing the files") as show_assembly:
                recording = group.stop_recording()
    if args.json:
        print(json.dumps(summary_data(recording.folder, recording.manifest), indent=2))
    else:
        print(format_summary(recording.manifest))
    return EXIT_OK if recording.status == "finalized" else EXIT_FAILED


def _ignore_progress(_fraction: float) -> None:
    """Where no bar is shown: progress goes nowhere."""


def summary_data(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """`record --json`: the take's folder, status, frames and dropped frames per camera,
    capture spread (the sync report's summary, with the tolerance when there is one) and
    errors."""
    return {
        "folder": str(folder), "name": manifest["name"], "status": manifest["status"],
        "cameras": [{"id": camera["id"], "frames": camera["frames"] or 0,
                     "dropped": camera["dropped"] or 0} for camera in manifest["cameras"]],
        "sync": manifest.get("sync") or None,
        "errors": list(manifest.get("errors", [])),
    }


def format_summary(manifest: dict[str, Any]) -> str:
    lines = [f"recording  {manifest['name']}  status: {manifest['status']}"]
    lines.append(f"{'camera':<12}{'frames':>8}{'dropped':>9}")
    for camera in manifest["cameras"]:
        lines.append(f"{camera['id']:<12}{camera['frames'] or 0:>8}{camera['dropped'] or 0:>9}")
    sync = manifest.get("sync") or {}
    if sync:
        line = (f"capture spread ms  p50 {sync['p50_ms']:.3f}  p99 {sync['p99_ms']:.3f}  "
                f"max {sync['max_ms']:.3f}  ({sync['frame_sets']} frame sets)")
        if "tolerance_ms" in sync:
            held = ("held" if sync_held(sync)
                    else f"NOT held: {sync['over_tolerance']} frame sets over")
            line += f"  tolerance {sync['tolerance_ms']:.3f}: {held}"
        lines.append(line)
    lines.extend(f"error: {error}" for error in manifest.get("errors", []))
    return "\n".join(lines)


def cmd_recover(args: argparse.Namespace) -> int:
    """Salvage every recording a crash left unfinished under DIR (or DIR itself)."""
    from engine.recording.finalize import recover

    with progress_bar("recovering") as progress:
        results = recover(Path(args.folder), progress)
    if args.json:
        print(json.dumps(results, indent=2, default=_json_value))
    else:
        _print_recovered(results, args.folder)
    return EXIT_FAILED if any(r.get("error") for r in results) else EXIT_OK


def _print_recovered(results: list[dict[str, Any]], folder: str) -> None:
    if not results:
        print(f"nothing to recover in {folder}")
    for result in results:
        if result.get("error"):
            print(f"{result['folder']}: NOT recovered: {result['error']}")
        elif result.get("cleaned"):
            print(f"{result['folder']}: already {result['status']}; removed the lock file a "
                  "crash left behind")
        else:
            cut = ", ".join(f"{camera} {count}" for camera, count
                            in result.get("frames_dropped", {}).items()) or "none"
            print(f"{result['folder']}: {result['status']}, {result['frames']} frames per camera"
                  f" (frames cut to keep counts identical: {cut})")


def cmd_verify(args: argparse.Namespace) -> int:
    from engine.recording.verify import verify_recording

    with progress_bar("verifying") as progress:
        report = verify_recording(Path(args.recording), args.sync_tolerance_ms, progress)
    if args.json:
        print(json.dumps({"recording": str(report.recording_dir), "ok": report.ok,
                          "problems": report.problems, "cameras": report.cameras,
                          "sync": report.sync}, indent=2, default=_json_value))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    """Export a finished take for another tool; print the path written."""
    take = Path(args.take)
    try:
        with progress_bar(f"exporting to {args.to}") as progress:
            written = export_take(take, args.to, Path(args.output) if args.output else None,
                                  progress)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"take": str(take), "format": args.to, "output": str(written)}))
    else:
        print(written)
    return EXIT_OK


def _json_value(value: Any) -> Any:
    """What json cannot write by itself: a NumPy number as a Python one, else its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def cmd_cameras(args: argparse.Namespace) -> int:
    from engine.sources.discovery import list_cameras

    cameras = list_cameras()
    if args.json:
        print(json.dumps(cameras, indent=2))
        return EXIT_OK
    for camera in cameras:
        print(f"{camera['source']:<15} {camera['kind']:<11}{camera.get('description', '')}")
        if camera["kind"] == "network":  # ONVIF: where it answers, and what the user must add
            print(f"{'':<27}ONVIF device service: {' '.join(camera['xaddrs'])}")
            print(f"{'':<27}stream: {camera['hint']}")
        if camera["kind"] == "device":
            for line in device_summary(camera):
                print(f"{'':<27}{line}")
    return EXIT_OK


def device_summary(camera: dict[str, Any], sizes_shown: int = 4) -> list[str]:
    """A USB camera's discovery entry in a few lines: where it is, each format's largest
    sizes at their top rate, its controls, and any warning (`cameras --json` has it all)."""
    where = [f"node {camera['node']}"]
    if camera.get("usb_bus") is not None:
        where.append(f"USB bus {camera['usb_bus']}")
    where += [f"{key.replace('_', '-')} {camera[key]}" for key in ("by_id", "by_path")
              if camera.get(key) and camera[key] != camera["source"]]
    lines = ["; ".join(where)]
    for fmt in camera.get("formats", []):
        if not fmt["readable"]:
            lines.append(f"{fmt['fourcc']:<6}not offered: no reader decodes it")
            continue
        top: dict[tuple[int, int], float] = {}
        for width, height, fps in fmt["modes"]:
            top[(width, height)] = max(fps, top.get((width, height), 0.0))
        shown = [f"{w}x{h}@{fps:g}" for (w, h), fps in list(top.items())[:sizes_shown]]
        more = f" … ({len(top)} sizes)" if len(top) > sizes_shown else ""
        lines.append(f"{fmt['fourcc']:<6}{', '.join(shown)}{more}")
    controls = [control["name"] for control in camera.get("controls", [])]
    if controls:
        lines.append(f"controls: {', '.join(controls)}")
    lines += [f"warning: {warning}" for warning in camera.get("warnings", [])]
    return lines


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the engine until a client or a signal shuts it down. It logs to the engine's
    log (and a terminal, if it has one); with --log-output (an engine a client launched,
    which has none) its output, its processes' too, goes to the log as well."""
    from engine.service.engine_log import open_engine_log, output_to_log

    open_engine_log(echo=not args.log_output)
    if not args.log_output:
        return _serve(args)
    with output_to_log():
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from engine.rig import demo_rig
    from engine.service.device_watch import STATUS_FILE_NAME
    from engine.service.rig_service import RigService
    from engine.service.server import EngineServer
    from engine.state.store import StateStore
    from engine.wire.paths import runtime_dir, state_db_path

    rig_file = Path(args.rig).expanduser().absolute() if args.rig else None
    rig = load_rig(rig_file) if rig_file else demo_rig(args.demo)

    def service(emit):
        store = StateStore(state_db_path())
        if store.damage:
            print(f"warning: {store.damage}", file=sys.stderr, flush=True)
        return RigService(rig, emit, store, runtime_dir() / STATUS_FILE_NAME, rig_file)

    if args.node:  # refused before the engine claims its socket
        from engine.nodes.agent import NodeAgent
        from engine.wire.nodes import check_name

        try:
            check_name("node", args.node)
            check_name("rig", args.rig_id)
        except ValueError as exc:  # a name that cannot be a broker subject
            raise argparse.ArgumentTypeError(str(exc)) from None
        broker_url = _broker_url(args)
    server = EngineServer(service, runtime_dir())
    agent = None
    if args.node:
        agent = NodeAgent(server, args.node, broker_url, args.rig_id,
                          token=os.environ.get(BROKER_TOKEN_ENV))

    def request_shutdown(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if server.shutdown_requested.is_set():  # a second signal: the user will not wait
            print(f"{name} again: exiting at once (recover finishes any recording)",
                  file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        print(f"{name}: finalizing and shutting down", file=sys.stderr, flush=True)
        server.shutdown_requested.set()

    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)
    logging.getLogger("engine.cli").info("engine %s serving rig %r (%d cameras)", version(),
                                         rig.name, len(rig.cameras))
    if agent is not None:
        agent.start()
    try:
        server.serve()
    finally:
        if agent is not None:
            agent.close()
    return EXIT_OK


def _client():
    from engine.client import EngineClient

    return EngineClient.connect()


BROKER_ENV = "RECORDER_BROKER"
BROKER_TOKEN_ENV = "RECORDER_BROKER_TOKEN"


def _broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", metavar="URL", default=os.environ.get(BROKER_ENV),
                        help=f"the rig's NATS server, nats://HOST:PORT or tls://... (default: "
                             f"${BROKER_ENV}); a token as ${BROKER_TOKEN_ENV} or in the URL "
                             "(nats://TOKEN@HOST:PORT)")
    parser.add_argument("--rig-id", default="rig", metavar="NAME",
                        help="the rig's name on the broker: nodes and coordinator share it")


def _rig_take_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lead", type=float, default=0.5, metavar="S",
                        help="how far ahead the nodes agree on the start and the stop")
    parser.add_argument("--json", action="store_true")


def _broker_url(args: argparse.Namespace) -> str:
    if not args.broker:
        raise argparse.ArgumentTypeError(f"no broker: give --broker URL or set ${BROKER_ENV}")
    return str(args.broker)


@contextlib.contextmanager
def _coordinator(args: argparse.Namespace) -> Iterator[RigCoordinator]:
    """A coordinator of the rig on the broker args name, disconnected after."""
    from engine.nodes.broker import BrokerLink
    from engine.nodes.coordinator import RigCoordinator

    link = BrokerLink(_broker_url(args), name="recorder coordinator",
                      token=os.environ.get(BROKER_TOKEN_ENV))
    try:
        link.connect()
        yield RigCoordinator(link, args.rig_id)
    finally:
        link.close()


def cmd_rig_nodes(args: argparse.Namespace) -> int:
    """Every node heard on the broker, with its cameras, state and measured clock."""
    from engine.nodes.broker import BrokerError

    rows: list[dict[str, Any]] = []
    unreadable: dict[str, str] = {}
    try:
        with _coordinator(args) as coordinator:
            nodes = coordinator.nodes(args.wait, args.expect)
            unreadable = dict(coordinator.unreadable)
            for name, node in nodes.items():
                try:
                    clock: dict[str, Any] = coordinator.clock(name).to_dict()
                except BrokerError as exc:
                    clock = {"error": str(exc)}
                rows.append({"node": name, "state": node.state, "rig": node.rig,
                             "version": node.version, "cameras": node.cameras, "clock": clock,
                             "health": node.health})
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for name, error in unreadable.items():
        print(f"node {name}: its announcement cannot be read (another version?): {error}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no node of rig {args.rig_id!r} announced itself within {args.wait:g} s")
    else:
        print(f"{'node':<14}{'state':<11}{'cameras':>8}{'cpu %':>7}{'disk free':>11}"
              f"{'clock offset ms':>17}{'+-':>8}")
        for row in rows:
            reading, health = row["clock"], row["health"]
            offset = (f"{reading['offset_ms']:>17.3f}{reading['uncertainty_ms']:>8.3f}"
                      if "offset_ms" in reading else f"  {reading['error']}")
            cpu = health.get("cpu_percent")
            free = health.get("disk_free_bytes")
            print(f"{row['node']:<14}{row['state']:<11}{len(row['cameras']):>8}"
                  f"{'-' if cpu is None else f'{cpu:.0f}':>7}"
                  f"{'-' if free is None else f'{free / 1e9:.0f} GB':>11}{offset}"
                  + ("" if health.get("healthy", True) else f"  {health.get('error')}"))
    return EXIT_OK if rows else EXIT_FAILED


def cmd_rig_record(args: argparse.Namespace) -> int:
    """One take on every node of the rig, started and ended on agreed moments."""
    from engine.nodes.broker import BrokerError
    from engine.nodes.rig_take import RigTake, RigTakeError
    from engine.wire.paths import rig_takes_dir

    output = Path(args.output).expanduser() if args.output else rig_takes_dir()
    try:
        with _coordinator(args) as coordinator:
            take = RigTake.start(coordinator, output, name=args.name, seconds=args.seconds,
                                 expect=args.expect, lead_s=args.lead,
                                 tolerance_ms=args.tolerance_ms, codec=args.codec)
            nodes = ", ".join(entry["node"] for entry in take.manifest["nodes"])
            print(f"recording rig take {take.folder} on {nodes}"
                  + ("" if args.seconds else " (Ctrl-C stops it)"), file=sys.stderr, flush=True)
            if args.seconds is None:
                _wait_for_interrupt()
                take.stop(args.lead)
            manifest = take.finish()
    except (BrokerError, RigTakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _print_rig_take(take.folder, manifest, args.json)


def _on_rig_take(args: argparse.Namespace, act: Callable[[RigTake], Any]
                 ) -> tuple[RigTake, Any] | None:
    """act(take) on the rig take args.take names: the take and what act returned, or None
    once the error is printed."""
    from engine.nodes.broker import BrokerError
    from engine.nodes.rig_take import RigTake, RigTakeError

    try:
        with _coordinator(args) as coordinator:
            take = RigTake.open(coordinator, Path(args.take))
            return take, act(take)
    except (BrokerError, RigTakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_rig_stop(args: argparse.Namespace) -> int:
    """Stop a rig take that runs on (its coordinator went away), then assemble it."""
    def stop(take: RigTake) -> dict[str, Any]:
        take.stop(args.lead)
        return take.finish()

    done = _on_rig_take(args, stop)
    return EXIT_FAILED if done is None else _print_rig_take(done[0].folder, done[1], args.json)


def cmd_rig_pause(args: argparse.Namespace) -> int:
    """Pause (or resume) writing a rig take on every node at the same frame set."""
    done = _on_rig_take(args, lambda take: take.resume(args.lead) if args.resume
                        else take.pause(args.lead))
    if done is None:
        return EXIT_FAILED
    print(f"{'resumed' if args.resume else 'paused'} {done[0].folder.name} from its frame set "
          f"{done[1]} on every node")
    return EXIT_OK


def cmd_rig_ctl(args: argparse.Namespace) -> int:
    """One engine command (as `ctl` sends it) on every node of the rig, or on --node."""
    from engine.nodes.broker import BrokerError
    from engine.nodes.coordinator import NodeCommandError

    command = ctl_command(args)
    answers: dict[str, Any] = {}
    try:
        with _coordinator(args) as coordinator:
            nodes = [args.node] if args.node else list(coordinator.nodes(args.listen,
                                                                         args.expect))
            for node in nodes:
                try:
                    answers[node] = {"result": coordinator.command(node, command)}
                except (BrokerError, NodeCommandError) as exc:
                    answers[node] = {"error": str(exc)}
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(answers, indent=2))
    return EXIT_OK if answers and all("result" in a for a in answers.values()) else EXIT_FAILED


def cmd_rig_assemble(args: argparse.Namespace) -> int:
    """Join the files of every node that has them now (a lost node back and recovered)."""
    done = _on_rig_take(args, lambda take: take.assemble())
    return EXIT_FAILED if done is None else _print_rig_take(done[0].folder, done[1], args.json)


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_rig_take(folder: Path, manifest: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"folder": str(folder), **manifest}, indent=2))
    else:
        print(f"rig take {folder}: {manifest['status']}")
        for entry in manifest["nodes"]:
            frames = ", ".join(f"{camera['id']} {camera.get('frames')}"
                               for camera in entry.get("cameras", []))
            offset = entry["clock"]["start"]["offset_ms"]
            print(f"  {entry['node']:<12}{entry['status']:<11}offset {offset:>10.3f} ms  "
                  f"{frames}  {entry.get('folder') or ''}  {entry.get('error') or ''}".rstrip())
        sync = manifest.get("sync") or {}
        if sync.get("spread_ms"):
            spread = sync["spread_ms"]
            print(f"  {sync['frame_sets']} frame sets, identical counts: "
                  f"{sync['identical_counts']}; cross-node spread median {spread['median']} ms, "
                  f"p99 {spread['p99']} ms, max {spread['max']} ms; start skew "
                  f"{sync['start_skew_ms']} ms")
    return EXIT_OK if manifest["status"] == "finished" else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    with _client() as client:
        status = client.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    engine = status["engine"]
    print(f"engine {engine['version']}  state: {engine['state']}  up {engine['uptime_s']:.0f} s")
    print(f"log {engine['log']}")
    print(f"{'camera':<10}{'status':<13}{'for':>8}{'restarts':>9}{'pid':>8}{'fps':>8}"
          f"{'frames':>9}{'dropped':>9}  source")
    for camera in status["cameras"]:
        since = camera.get("since")
        held = f"{time.time() - since:.0f} s" if since else "-"
        print(f"{camera['id']:<10}{camera['status']:<13}{held:>8}{camera.get('restarts', 0):>9}"
              f"{camera['pid'] or '-':>8}{camera['fps']:>8.1f}{camera['frames']:>9}"
              f"{camera['dropped']:>9}  {camera['source']}")
        if camera.get("error"):
            print(f"{'':<10}error: {camera['error']}")
    recording = status["recording"]
    if recording:
        state = (" (PAUSED: not writing)" if recording["paused"] else "") + (
            " (FROZEN: cameras held)" if recording.get("frozen") else "")
        print(f"recording {recording['folder']}  {recording['elapsed_s']:.0f} s{state}")
    return EXIT_OK


def _parse_assignments(pairs: list[str]) -> dict[str, str]:
    changes = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise argparse.ArgumentTypeError(f"settings look like KEY=VALUE, not {pair!r}")
        changes[key] = value
    return changes


def ctl_command(args: argparse.Namespace) -> Command:
    """The command a `ctl` sub-command names, its arguments taken from the command line
    (an argument not given takes the command's default)."""
    declared = COMMANDS.fields(args.action)
    values = {name: getattr(args, name) for name in declared}
    for name, hint in declared.items():
        if _is_dict(hint) and values[name] is not None:
            values[name] = _parse_assignments(values[name]) or None
        if name in _CTL_PATHS and values[name] is not None:
            values[name] = os.path.abspath(os.path.expanduser(values[name]))
    given = {name: value for name, value in values.items() if value is not None}
    command: Command = COMMANDS.type_of(args.action)(**given)
    return command


def cmd_ctl(args: argparse.Namespace) -> int:
    command = ctl_command(args)
    with _client() as client:
        result = client.call(command)
    print(json.dumps(result, indent=2))
    return EXIT_OK


_CTL_CHOICES = {"codec": CODEC_CHOICES}
# Fields that name a file or folder: made absolute here, as the engine's working folder is
# not the caller's. A `path` (a rig file) is positional, and optional where its field is.
_CTL_PATHS = {"path", "folder", "output"}


def _is_dict(hint: Any) -> bool:
    return dict in (hint, get_origin(hint)) or any(_is_dict(arm) for arm in _arms(hint))


def _arms(hint: Any) -> tuple[Any, ...]:
    """The types of a union (X | None), without None; () for anything else."""
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(arm for arm in get_args(hint) if arm is not type(None))
    return ()


def _add_ctl_commands(ctl: argparse.ArgumentParser) -> None:
    """One sub-command per engine command (engine.wire.commands), its fields as arguments:
    a required field is positional, an optional one an --option; an object takes
    KEY=VALUE pairs."""
    actions = ctl.add_subparsers(dest="action", required=True, metavar="COMMAND")
    for name in COMMANDS.names():
        cls: type[Command] = COMMANDS.type_of(name)
        if name == "subscribe":
            continue  # a one-shot command line has no event stream to receive
        parser = actions.add_parser(name.replace("_", "-"),
                                    help=(cls.__doc__ or "").strip().splitlines()[0])
        parser.set_defaults(action=name)
        hints = COMMANDS.fields(name)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            required = field.default is dataclasses.MISSING
            if _is_dict(hint) and required:
                parser.add_argument(field.name, nargs="+", metavar="KEY=VALUE")
            elif _is_dict(hint):
                parser.add_argument(f"--{field.name}", nargs="+", metavar="KEY=VALUE")
            elif field.name == "path":
                parser.add_argument(field.name, metavar="FILE", nargs=None if required else "?")
            elif required:
                parser.add_argument(field.name, metavar=field.name.upper())
            elif hint is bool:
                parser.add_argument(f"--{field.name}", action=argparse.BooleanOptionalAction,
                                    default=None)
            else:
                arm = (_arms(hint) or (hint,))[0]
                parser.add_argument(f"--{field.name}", type=arm if arm in (int, float) else str,
                                    choices=_CTL_CHOICES.get(field.name))


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recorder-engine",
                                     description=(__doc__ or "").split("\n\n")[0],
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    record = commands.add_parser(
        "record", help="record cameras in lock-step for a while", epilog=RECORD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    chosen = record.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--demo", type=int, metavar="N", help="N synthetic cameras")
    chosen.add_argument("--camera", action="append", type=parse_camera, metavar="SOURCE[@WxH]",
                        help="a source: synthetic, 0, /dev/video0, a file, or a URL ("
                        + ", ".join(f"{scheme}://" for scheme in NETWORK_SCHEMES) + "); "
                        "repeat for more cameras; @WxH gives it a size of its own")
    chosen.add_argument("--rig", metavar="FILE",
                        help="the cameras and sensors of a rig file (TOML), with its "
                             "[recording] options and disk thresholds; the options given "
                             "here replace the rig's")
    record.add_argument("--content", choices=CONTENTS, default="clean",
                        help="what the --demo cameras show: clean (the test pattern) or "
                             "realistic (texture, motion and sensor noise: a real camera's "
                             "encoding cost)")
    record.add_argument("--size", type=parse_size, metavar="WxH",
                        help=f"the size of every camera without an @WxH of its own (default "
                             f"{DEFAULT_WIDTH}x{DEFAULT_HEIGHT}; with --rig: each camera's)")
    record.add_argument("--fps", type=float,
                        help=f"frames per second (default {DEFAULT_FPS:g}; with --rig: each "
                             "camera's)")
    record.add_argument("--codec", choices=CODEC_CHOICES,
                        help="default: the rig's, else h264. auto: a hardware H.264 encoder if "
                             "the machine has one (nvenc, qsv), else x264; one it lacks falls "
                             "back to x264")
    record.add_argument("--preset", choices=X264_PRESETS,
                        help=f"x264's preset (default: the rig's h264_preset, else "
                             f"{DEFAULT_PRESET}): slower, smaller files")
    record.add_argument("--trigger", choices=TRIGGERS,
                        help="who starts each exposure of the machine-vision cameras (pylon:, "
                             "genicam:): software (the engine, at every frame set; the "
                             "default, unless the rig says), hardware (an input line), free "
                             "(the camera's own clock)")
    record.add_argument("--seconds", type=float, required=True)
    record.add_argument("--output", metavar="DIR",
                        help="where the recording's folder is made (default: the rig's "
                             "output, else recordings in your Videos folder)")
    record.add_argument("--name", help="recording folder name (default: the local time)")
    record.add_argument("--sensor", action="append", metavar="URI",
                        help="a sensor stream: imu:synthetic, serial:/dev/ttyUSB0?fields=a,b")
    record.add_argument("--disk-stop-below-gb", type=float, metavar="GB",
                        help="refuse to start, and stop cleanly, below this much free space "
                             "(default: the rig's disk_stop_below_gb, else 1)")
    record.add_argument("--json", action="store_true",
                        help="print the summary as JSON: folder, status, frames and dropped "
                             "frames per camera, capture spread, errors")
    record.set_defaults(handler=cmd_record)

    verify = commands.add_parser("verify", help="check that every file holds the same frames")
    verify.add_argument("recording", metavar="RECORDING_DIR")
    verify.add_argument("--sync-tolerance-ms", type=positive_ms, metavar="MS",
                        help="fail when the cameras' capture spread exceeds this at p99 "
                             "(default: the rig's sync_tolerance_ms, else one frame period)")
    verify.add_argument("--json", action="store_true",
                        help="print the report as JSON: ok, problems, cameras, sync")
    verify.set_defaults(handler=cmd_verify)

    recover = commands.add_parser("recover", help="salvage recordings a crash left unfinished")
    recover.add_argument("folder", nargs="?", default=".", metavar="DIR",
                         help="a recording, or a folder of recordings (default: .)")
    recover.add_argument("--json", action="store_true",
                         help="print what was done to each take as JSON")
    recover.set_defaults(handler=cmd_recover)

    export = commands.add_parser("export", help="export a finished take for another tool")
    export.add_argument("take", metavar="TAKE", help="the take's folder")
    export.add_argument("--to", required=True, choices=FORMATS,
                        help="freemocap or skellycam (their recording folder of MP4s), "
                             "anipose (a project session), nwb (Neurodata Without Borders), "
                             "mkv (one file, a track per camera)")
    export.add_argument("--output", metavar="DIR",
                        help="the folder to write into (default: TAKE/exports/FORMAT)")
    export.add_argument("--json", action="store_true",
                        help="print the take, the format and the path written as JSON")
    export.set_defaults(handler=cmd_export)

    cameras = commands.add_parser("cameras", help="list the sources that can be found")
    cameras.add_argument("--json", action="store_true")
    cameras.set_defaults(handler=cmd_cameras)

    serve = commands.add_parser("serve", help="run the engine service in the foreground")
    rig_choice = serve.add_mutually_exclusive_group()
    rig_choice.add_argument("--rig", metavar="FILE", help="a rig file (TOML)")
    rig_choice.add_argument("--demo", type=int, default=4, metavar="N",
                            help="N synthetic cameras (the default rig, N=4)")
    serve.add_argument("--node", metavar="NAME",
                       help="also join a multi-machine rig on the broker as node NAME")
    _broker_arguments(serve)
    serve.add_argument("--log-output", action="store_true",
                       help="send the engine's output, and its processes', to its log instead "
                            "of this terminal (what an engine a client launches does)")
    serve.set_defaults(handler=cmd_serve)

    rig = commands.add_parser("rig", help="a rig of several machines, over the broker")
    rig_actions = rig.add_subparsers(dest="rig_action", required=True)
    nodes = rig_actions.add_parser(
        "nodes", help="the nodes on the broker: cameras, state and clock offset")
    _broker_arguments(nodes)
    nodes.add_argument("--wait", type=float, default=2.5, metavar="S",
                       help="listen this long for nodes to announce themselves")
    nodes.add_argument("--expect", type=int, default=0, metavar="N",
                       help="stop listening once N nodes are heard")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(handler=cmd_rig_nodes)
    record = rig_actions.add_parser(
        "record", help="one take on every node, started and ended on agreed moments")
    _broker_arguments(record)
    record.add_argument("--seconds", type=float, metavar="S",
                        help="the take's length (default: until Ctrl-C)")
    record.add_argument("--name", help="the take's name (default: rig-<UTC time>)")
    record.add_argument("--output", metavar="DIR",
                        help="where the rig manifest goes (default: the recordings folder's "
                             "rig-takes/); each node records into its own folder")
    record.add_argument("--codec", help="the nodes' codec (default: each rig file's)")
    record.add_argument("--expect", type=int, default=0, metavar="N",
                        help="refuse to start with fewer than N nodes")
    record.add_argument("--tolerance-ms", type=float, default=5.0, metavar="MS",
                        help="refuse to start unless every node's clock offset is known "
                             "this well")
    _rig_take_arguments(record)
    record.set_defaults(handler=cmd_rig_record)
    stop = rig_actions.add_parser(
        "stop", help="stop a rig take whose coordinator went away, then assemble it")
    _broker_arguments(stop)
    stop.add_argument("take", help="the rig take's folder (its rig.json)")
    _rig_take_arguments(stop)
    stop.set_defaults(handler=cmd_rig_stop)
    for action in ("pause", "resume"):
        pause = rig_actions.add_parser(
            action, help=f"{action} writing a rig take on every node at the same frame set")
        _broker_arguments(pause)
        pause.add_argument("take", help="the rig take's folder (its rig.json)")
        pause.add_argument("--lead", type=float, default=0.5, metavar="S",
                           help=f"how far ahead the nodes agree on the {action}")
        pause.set_defaults(handler=cmd_rig_pause, resume=action == "resume")
    rig_ctl = rig_actions.add_parser(
        "ctl", help="send an engine command (as ctl does) to every node, or to --node")
    _broker_arguments(rig_ctl)
    rig_ctl.add_argument("--node", metavar="NAME", help="only this node")
    rig_ctl.add_argument("--listen", type=float, default=2.5, metavar="S",
                         help="listen this long for nodes to announce themselves (a "
                              "command's own options, such as stop's --wait, follow it)")
    rig_ctl.add_argument("--expect", type=int, default=0, metavar="N",
                         help="stop listening once N nodes are heard")
    _add_ctl_commands(rig_ctl)
    rig_ctl.set_defaults(handler=cmd_rig_ctl)
    assemble = rig_actions.add_parser(
        "assemble", help="join the files of nodes that are back (a lost node recovered)")
    _broker_arguments(assemble)
    assemble.add_argument("take", help="the rig take's folder (its rig.json)")
    assemble.add_argument("--json", action="store_true")
    assemble.set_defaults(handler=cmd_rig_assemble)

    status = commands.add_parser("status", help="state of the running engine")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    ctl = commands.add_parser("ctl", help="send a command to the running engine")
    _add_ctl_commands(ctl)
    ctl.set_defaults(handler=cmd_ctl)

    bench = commands.add_parser("bench", help="measure capture, gating, publishing and encoding")
    bench.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    bench.add_argument("--seconds", type=float, default=4.0, help="seconds per capture case")
    bench.add_argument("--record-seconds", type=float, default=60.0,
                       help="length of the 4 x 1280x720 H.264 recording case (0 skips it)")
    bench.add_argument("--network-seconds", type=float, default=8.0,
                       help="seconds each for the 720p30 network camera and its bare reader "
                            "(needs ffmpeg; 0 skips it)")
    bench.add_argument("--sync-seconds", type=float, default=10.0,
                       help="length of the recording of 2 cameras on one stamped RTSP stream "
                            "(needs GStreamer's RTSP server for /usr/bin/python3; 0 skips it)")
    bench.add_argument("--rig-seconds", type=float, default=5.0,
                       help="length of a take across 2 engine nodes on a NATS broker on this "
                            "machine, beside command round trips through it (needs "
                            "nats-server; 0 skips it)")
    bench.add_argument("--writer-seconds", type=float, default=8.0,
                       help="seconds of each one-camera take measuring a writer against the "
                            "bare encoder, per size and content (0: skip)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except argparse.ArgumentTypeError as exc:  # a value argparse could not check itself
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (GroupError, RecordingError, SourceError, SettingRejected, RigError,
            EngineAlreadyRunning, EngineNotRunning, EngineCommandError, LowDiskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
