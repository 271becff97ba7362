"""One take across the nodes of a rig of several machines (`recorder-engine rig record`).

Every node records its own cameras into its own folder, as a one-machine engine does;
what makes their files one take is that they cover the same frame sets:
- the coordinator measures every node's clock offset (engine/nodes/clock.py) and refuses
  to start when one cannot be placed within the rig's tolerance;
- it picks a start moment `lead_s` ahead on its clock and gives each node that moment on
  the node's own clock: every node's first frame set is due at it, the next ones a
  period apart (TakeController.start with at_ns);
- the take's length is a number of frame sets, given with the start (--seconds) or with
  the stop (chosen `lead_s` ahead): every node ends after the same set, by itself, so a
  broker or a coordinator that goes away meanwhile changes nothing. A pause and its
  resume are agreed the same way, so every node's files skip the same sets.

The coordinator writes the rig manifest (rig.json, naming every node's folder) as the
take starts and again when it ends, with the rig's sync report (engine/nodes/rig_sync.py)
from the capture times of every camera of every node, moved onto the coordinator's clock
by each node's offset (measured at the start and at the end, so drift is corrected too).
A node that does not answer at the end is marked lost; once it is back (its engine
recovers the take when it starts again), `rig assemble` joins its files.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine import machine_clock
from engine.durable import write_json_atomic
from engine.nodes.broker import BrokerError
from engine.nodes.clock import ClockEstimate, drift_ppm, offset_at
from engine.nodes.coordinator import NodeCommandError, RigCoordinator
from engine.nodes.rig_sync import SYNC_REPORT_NAME, rig_sync_report
from engine.utc import utc_now_iso
from engine.wire.commands import Pause, Record, Resume, Stop, TakeSummary, TakeTimes
from engine.wire.nodes import unpack_ns

T = TypeVar("T")
RIG_MANIFEST_NAME = "rig.json"
RIG_MANIFEST_FORMAT = 1
LEAD_S = 0.5  # how far ahead the start and the stop are agreed
TOLERANCE_MS = 5.0  # how well every node's clock offset must be known
FINISH_WAIT_S = 60.0  # the longest a node may take to finish its files after the end
LOST_AFTER_S = 10.0  # a node that answers nothing this long after the end is lost
_POLL_S = 0.25
FINISHED = ("finalized", "recovered")


class RigTakeError(RuntimeError):
    """The rig's take cannot start or be assembled; the text names the node and why."""


def _rate(statuses: dict[str, Any]) -> float:
    """The frame-set rate every node runs at (its slowest camera's, as set); RigTakeError
    when the nodes differ, since their takes could not then hold the same frame sets."""
    rates = {}
    for node, status in statuses.items():
        fps = [float(camera.get("target_fps") or 0) for camera in status.cameras]
        if not fps or not min(fps):
            raise RigTakeError(f"node {node} has no running camera")
        rates[node] = min(fps)
    if len(set(rates.values())) > 1:
        raise RigTakeError("the nodes run at different rates: " + ", ".join(
            f"{node} {fps:g} fps" for node, fps in rates.items()))
    return next(iter(rates.values()))


def _each(nodes: list[str], call: Callable[[str], T]) -> dict[str, T | Exception]:
    """call(node) on every node at once; a node's result, or the error it raised."""
    def guarded(node: str) -> T | Exception:
        try:
            return call(node)
        except (BrokerError, NodeCommandError) as exc:
            return exc

    with ThreadPoolExecutor(max(1, len(nodes))) as pool:
        return dict(zip(nodes, pool.map(guarded, nodes), strict=True))


class RigTake:
    """A take of the rig, as its manifest (rig.json in `folder`) holds it."""

    def __init__(self, coordinator: RigCoordinator, folder: Path, manifest: dict[str, Any]
                 ) -> None:
        self.coordinator = coordinator
        self.folder = folder
        self.manifest = manifest

    # --- start ---------------------------------------------------------------------------

    @classmethod
    def start(cls, coordinator: RigCoordinator, output: Path, *, name: str | None = None,
              seconds: float | None = None, expect: int = 0, lead_s: float = LEAD_S,
              tolerance_ms: float = TOLERANCE_MS, codec: str | None = None) -> RigTake:
        """Start a take on every node heard (at least `expect`); with seconds it ends by
        itself after that long. RigTakeError names what refused it."""
        statuses = coordinator.nodes(expect=expect)
        if not statuses or len(statuses) < expect:
            unreadable = "".join(f"; node {node} announces itself in a form this coordinator "
                                 f"cannot read (another version?): {error}"
                                 for node, error in coordinator.unreadable.items())
            raise RigTakeError((f"{len(statuses)} node(s) of rig {coordinator.rig!r} heard, "
                                f"{expect} expected" if expect else
                                f"no node of rig {coordinator.rig!r} is on the broker")
                               + unreadable)
        nodes = list(statuses)
        fps = _rate(statuses)
        clocks = _each(nodes, coordinator.clock)
        problems = [f"node {node}: {clock}" for node, clock in clocks.items()
                    if isinstance(clock, Exception)]
        problems += [_unsteady(node, clock, tolerance_ms) for node, clock in clocks.items()
                     if isinstance(clock, ClockEstimate)
                     and clock.uncertainty_ns + clock.spread_ns > tolerance_ms * 1e6]
        if problems:
            raise RigTakeError("recording refused: " + "; ".join(problems))
        estimates = {node: clock for node, clock in clocks.items()
                     if isinstance(clock, ClockEstimate)}
        name = name or time.strftime("rig-%Y%m%d-%H%M%S", time.gmtime())
        folder = _new_folder(output, name)
        frames = None if seconds is None else max(1, round(seconds * fps))
        start_at = machine_clock.now_ns() + round(lead_s * 1e9)
        take = cls(coordinator, folder, {
            "format": RIG_MANIFEST_FORMAT, "rig": coordinator.rig, "name": name,
            "status": "recording", "started_utc": utc_now_iso(), "stopped_utc": None,
            "start_at_ns": start_at, "fps": fps, "frames": frames, "lead_s": lead_s,
            "tolerance_ms": tolerance_ms,
            "nodes": [{"node": node, "folder": None, "status": "starting",
                       "clock": {"start": estimates[node].to_dict()}} for node in nodes],
            "sync": None})

        def record(node: str) -> Any:
            node_start = start_at + estimates[node].offset_ns
            return coordinator.command(node, Record(
                name=name, codec=codec, start_at_ns=node_start, frames=frames,
                rig_take={"rig": coordinator.rig, "take": name, "node": node,
                          "start_at_ns": node_start}), timeout_s=lead_s + 30.0)

        answers = _each(nodes, record)
        for entry in take.manifest["nodes"]:
            answer = answers[entry["node"]]
            if isinstance(answer, Exception):
                entry |= {"status": "failed", "error": str(answer)}
            else:
                entry |= {"status": "recording", "folder": answer["folder"],
                          "first_frame": answer["first_frame"],
                          "start_at_ns": answer["start_at_ns"]}
        failed = [entry for entry in take.manifest["nodes"] if entry["status"] == "failed"]
        if failed:
            _each([e["node"] for e in take.manifest["nodes"] if e["status"] == "recording"],
                  lambda node: coordinator.command(node, Stop(wait=False)))
            take.manifest["status"] = "failed"
            take.save()
            raise RigTakeError("the take did not start on every node: " + "; ".join(
                f"node {entry['node']}: {entry['error']}" for entry in failed))
        take.save()
        return take

    # --- the end -------------------------------------------------------------------------

    @property
    def end_ns(self) -> int | None:
        """When the take's last frame set ends (the coordinator's clock), once it is known."""
        frames = self.manifest["frames"]
        if frames is None:
            return None
        return self.manifest["start_at_ns"] + round(frames * 1e9 / self.manifest["fps"])

    def pause(self, lead_s: float = LEAD_S) -> int:
        """Pause writing `lead_s` from now on every node, at the same frame set; the set."""
        return self._at_set(Pause, lead_s)

    def resume(self, lead_s: float = LEAD_S) -> int:
        """Write again from the same frame set on every node, `lead_s` from now; the set."""
        return self._at_set(Resume, lead_s)

    def _at_set(self, command: type[Pause] | type[Resume], lead_s: float) -> int:
        frames = max(1, math.ceil((self._elapsed_s() + lead_s) * self.manifest["fps"]))
        answers = _each(self._nodes("recording"), lambda node: self.coordinator.command(
            node, command(frames=frames)))
        failed = [f"node {node}: {answer}" for node, answer in answers.items()
                  if isinstance(answer, Exception)]
        pauses = self.manifest.setdefault("pauses", [])
        if command is Pause:
            pauses.append([frames, None])
        elif pauses and pauses[-1][1] is None:
            pauses[-1][1] = frames
        self.save()
        if failed:
            raise RigTakeError(f"{command.NAME} did not reach every node: " + "; ".join(failed))
        return frames

    def stop(self, lead_s: float = LEAD_S) -> None:
        """End the take `lead_s` from now on every node, after the same frame set."""
        if self.manifest["frames"] is None:
            elapsed_s = self._elapsed_s()
            self.manifest["frames"] = max(1, math.ceil((elapsed_s + lead_s) * self.manifest["fps"]))
            self.save()
        frames = self.manifest["frames"]
        answers = _each(self._nodes("recording"), lambda node: self.coordinator.command(
            node, Stop(wait=False, frames=frames)))
        for node, answer in answers.items():
            if isinstance(answer, Exception):
                self._entry(node)["error"] = f"stop: {answer}"

    def _elapsed_s(self) -> float:
        """Seconds since the take started, read on a node's clock: the coordinator that
        stops a take need not be the one, or on the machine, that started it."""
        for node in self._nodes("recording"):
            try:
                clock = self.coordinator.clock(node, probes=8)
            except BrokerError:
                continue
            node_now = machine_clock.now_ns() + clock.offset_ns
            return (node_now - self._entry(node)["start_at_ns"]) / 1e9
        return (machine_clock.now_ns() - self.manifest["start_at_ns"]) / 1e9

    def finish(self, wait_s: float = FINISH_WAIT_S) -> dict[str, Any]:
        """Wait for the end, then for every node's finished files (a node silent for
        LOST_AFTER_S is marked lost); measure the clocks again; write the manifest and
        the sync report. The manifest."""
        end = self.end_ns
        if end is not None:
            time.sleep(max(0.0, (end - machine_clock.now_ns()) / 1e9))
        self._collect(time.monotonic() + wait_s, LOST_AFTER_S)
        self.manifest["stopped_utc"] = utc_now_iso()
        return self.assemble()

    def _collect(self, deadline: float, lost_after_s: float) -> None:
        """Ask every node that is not finished for its take's summary until it is."""
        silent_since: dict[str, float] = {}
        while True:
            waiting = [entry["node"] for entry in self.manifest["nodes"]
                       if entry.get("folder") and entry["status"] not in (*FINISHED, "failed")]
            if not waiting:
                return
            answers = _each(waiting, lambda node: self.coordinator.command(
                node, TakeSummary(folder=self._entry(node)["folder"]), timeout_s=5.0))
            now = time.monotonic()
            for node, answer in answers.items():
                entry = self._entry(node)
                if isinstance(answer, dict):
                    silent_since.pop(node, None)
                    entry |= {"status": answer["status"], "cameras": answer["cameras"],
                              "errors": answer.get("errors") or []}
                    entry.pop("error", None)
                elif isinstance(answer, BrokerError):
                    silent_since.setdefault(node, now)
                    if now - silent_since[node] >= lost_after_s:
                        entry |= {"status": "lost", "error": str(answer)}
                # else: the node answers that its take is not finished yet
            if now > deadline or all(self._entry(node)["status"] == "lost" for node in waiting):
                for node in waiting:
                    if self._entry(node)["status"] not in FINISHED:
                        self._entry(node).setdefault("error", "its take did not finish in time")
                return
            time.sleep(_POLL_S)

    def assemble(self) -> dict[str, Any]:
        """Join every node's finished files: measure the clocks of the nodes that answer,
        fetch their capture times, write the sync report and the manifest."""
        self._collect(time.monotonic() + 5.0, 0.0)
        finished = self._nodes(*FINISHED)
        ends = _each(finished, self.coordinator.clock)
        corrected: dict[str, np.ndarray] = {}
        for node in finished:
            entry = self._entry(node)
            start = ClockEstimate.from_dict(entry["clock"]["start"])
            measured = ends[node]
            end = measured if isinstance(measured, ClockEstimate) else None
            if end is not None:
                entry["clock"] |= {"end": end.to_dict(),
                                   "drift_ppm": round(drift_ppm(start, end), 3)}
            for camera in entry.get("cameras", []):
                answer = self.coordinator.command(node, TakeTimes(folder=entry["folder"],
                                                                  camera=camera["id"]))
                times = unpack_ns(answer["capture_ns"])
                corrected[f"{node}/{camera['id']}"] = times - offset_at(
                    start, end, times - start.offset_ns)
        report = rig_sync_report(corrected, self.manifest["fps"])
        report["nodes"] = {entry["node"]: entry["status"] for entry in self.manifest["nodes"]}
        write_json_atomic(self.folder / SYNC_REPORT_NAME, report)
        complete = all(entry["status"] in FINISHED for entry in self.manifest["nodes"])
        self.manifest["status"] = "finished" if complete else "incomplete"
        self.manifest["sync"] = {key: report.get(key) for key in (
            "frame_sets", "identical_counts", "spread_ms", "within_one_period", "start_skew_ms")}
        self.save()
        return self.manifest

    # --- the manifest --------------------------------------------------------------------

    @classmethod
    def open(cls, coordinator: RigCoordinator, folder: Path) -> RigTake:
        """A take from its rig manifest (to assemble it, or to stop it after the
        coordinator that started it went away)."""
        try:
            manifest = json.loads((folder / RIG_MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RigTakeError(f"no rig take at {folder}: {exc}") from None
        if manifest.get("rig") != coordinator.rig:
            raise RigTakeError(f"{folder} is a take of rig {manifest.get('rig')!r}, "
                               f"not {coordinator.rig!r}")
        return cls(coordinator, folder, manifest)

    def save(self) -> None:
        write_json_atomic(self.folder / RIG_MANIFEST_NAME, self.manifest)

    def _entry(self, node: str) -> dict[str, Any]:
        return next(entry for entry in self.manifest["nodes"] if entry["node"] == node)

    def _nodes(self, *statuses: str) -> list[str]:
        return [entry["node"] for entry in self.manifest["nodes"] if entry["status"] in statuses]


def _unsteady(node: str, clock: ClockEstimate, tolerance_ms: float) -> str:
    return (f"node {node}'s clock offset is known only to +-{clock.uncertainty_ns / 1e6:.2f} ms "
            f"with {clock.spread_ns / 1e6:.2f} ms of spread (the rig's tolerance is "
            f"{tolerance_ms:g} ms)")


def _new_folder(output: Path, name: str) -> Path:
    folder = Path(output).expanduser() / name
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise RigTakeError(f"a rig take {folder} exists already") from None
    except OSError as exc:
        raise RigTakeError(f"cannot create the rig take's folder {folder}: "
                           f"{exc.strerror or exc}") from None
    return folder
