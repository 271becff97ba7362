"""A Basler camera through Basler's pylon SDK (pypylon, the `pylon` extra).

`pylon:SERIAL` names a camera by its serial number, `pylon:N` the N-th camera pylon lists
(`PYLON_CAMEMU=3` makes pylon list three emulated cameras, with the real feature tree).
Triggers, device counters and settings: engine/sources/machine_vision.py. pylon's
BlockID is the device frame counter; its TimeStamp (0 on cameras that keep no clock,
the emulation among them) the device clock.
"""

from __future__ import annotations

import time
from typing import Any

from engine.pacing import sleep_until_ns
from engine.sources.base import PropertySpec, SourceError
from engine.sources.machine_vision import (
    FEATURE_CATEGORIES,
    MANAGED_FEATURES,
    MachineVisionCamera,
    Picture,
    choose_format,
    format_actual,
)

EXTRA = "pylon"  # pip install "recorder-workstation[pylon]"
# A test hook, accepted but not listed: after this many exposures, ask pylon's camera
# emulation for one failed buffer (ForceFailedBuffer), as a camera that loses a frame.
FAILED_BUFFER_HOOK = "failed_buffer_after_frames"
_TRIGGER_READY_MS = 1000
_VISIBLE_UP_TO = 1  # GenICam visibility: 0 Beginner, 1 Expert, 2 Guru, 3 Invisible
_READ_WRITE, _READ_ONLY = 4, 3  # GenICam access modes


def _pylon() -> Any:
    """pypylon's pylon module, or a SourceError naming the extra that provides it."""
    try:
        from pypylon import pylon
    except ImportError:
        raise SourceError(f"Basler cameras need pypylon: pip install "
                          f"'recorder-workstation[{EXTRA}]'") from None
    return pylon


def list_pylon_cameras() -> list[dict[str, str]]:
    """The cameras pylon sees (none without pypylon): source, serial, model, vendor."""
    try:
        pylon = _pylon()
    except SourceError:
        return []
    return [{"source": f"pylon:{info.GetSerialNumber()}", "serial": info.GetSerialNumber(),
             "model": info.GetModelName(), "vendor": info.GetVendorName()}
            for info in pylon.TlFactory.GetInstance().EnumerateDevices()]


class PylonSource(MachineVisionCamera):
    """One Basler camera; see the module doc."""

    kind_label = "Basler camera"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._camera: Any = None
        self._exposures = 0
        super().__init__(*args, **kwargs)

    def _default_options(self) -> dict[str, Any]:
        return super()._default_options() | {FAILED_BUFFER_HOOK: None}

    def _option_specs(self) -> list[PropertySpec]:
        return [*super()._option_specs(),
                PropertySpec(FAILED_BUFFER_HOOK, "int", self._options[FAILED_BUFFER_HOOK],
                             1, 10**9)]

    def properties(self) -> list[PropertySpec]:
        return [spec for spec in super().properties() if spec.name != FAILED_BUFFER_HOOK]

    # --- the camera through pylon -------------------------------------------------------

    def _open_device(self) -> None:
        pylon = _pylon()
        factory = pylon.TlFactory.GetInstance()
        camera = pylon.InstantCamera(factory.CreateDevice(self._find(factory)))
        camera.Open()
        self._camera = camera
        name, self._conversion = choose_format(camera.PixelFormat.Symbolics,
                                               f"{self.kind_label} {self.name}",
                                               self._options["pixel_format"])
        camera.PixelFormat.Value = name
        camera.Width.Value = _fit(camera.Width, int(self._requested["width"]))
        camera.Height.Value = _fit(camera.Height, int(self._requested["height"]))
        trigger = self._options["trigger"]
        camera.TriggerSelector.Value = "FrameStart"
        camera.TriggerMode.Value = "Off" if trigger == "free" else "On"
        if trigger == "software":
            camera.TriggerSource.Value = "Software"
        elif trigger == "hardware":
            camera.TriggerSource.Value = self._options["trigger_line"]
            camera.TriggerActivation.Value = self._options["trigger_edge"]
        fps = float(self._requested["fps"])
        rate = _writable(camera, "AcquisitionFrameRate", "AcquisitionFrameRateAbs")
        if rate is not None:
            enable = _writable(camera, "AcquisitionFrameRateEnable")
            if enable is not None:
                enable.Value = trigger == "free"
            if trigger == "free":
                rate.Value = min(max(fps, rate.Min), rate.Max)
                fps = float(rate.Value)
        self._actual = {"width": int(camera.Width.Value), "height": int(camera.Height.Value),
                        "fps": fps} | format_actual(name)
        camera.StartGrabbing(pylon.GrabStrategy_LatestImageOnly if trigger == "free"
                             else pylon.GrabStrategy_OneByOne)

    def _find(self, factory: Any) -> Any:
        devices = factory.EnumerateDevices()
        target = str(self._target).partition(":")[2].strip()
        for index, info in enumerate(devices):
            if target in (info.GetSerialNumber(), str(index)):
                return info
        seen = ", ".join(info.GetSerialNumber() for info in devices) or "none"
        raise SourceError(f"no {self.kind_label} {target!r} (pylon sees: {seen})")

    def _close_device(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.StopGrabbing()
                camera.Close()
            except Exception:  # a camera that is gone is closed enough
                pass

    def _fire_trigger(self, moment_ns: int) -> int:
        camera = self._camera
        self._exposures += 1
        if self._exposures == self._options[FAILED_BUFFER_HOOK]:
            camera.ForceFailedBufferCount.Value = 1
            camera.ForceFailedBuffer.Execute()
        camera.WaitForFrameTriggerReady(_TRIGGER_READY_MS, _pylon().TimeoutHandling_ThrowException)
        sleep_until_ns(moment_ns)
        fired_ns = time.monotonic_ns()
        camera.ExecuteSoftwareTrigger()
        return fired_ns

    def _grab_result(self) -> tuple[Picture, int] | None:
        camera = self._camera
        if camera is None:
            return None
        result = camera.RetrieveResult(int(self._options["read_timeout_ms"]),
                                       _pylon().TimeoutHandling_ThrowException)
        try:
            arrived_ns = time.monotonic_ns()
            if not result.GrabSucceeded():
                return (None, int(result.BlockID), -1), arrived_ns
            return (result.GetArray().copy(), int(result.BlockID),
                    int(result.TimeStamp) or -1), arrived_ns
        finally:
            result.Release()

    def _feature_specs(self) -> list[PropertySpec]:
        """The features of FEATURE_CATEGORIES with their type, limits, increment, entries
        and whether they may be written now, as the camera's feature tree says."""
        camera = self._camera
        if camera is None:
            return []
        from pypylon import genicam

        specs = []
        node_map = camera.GetNodeMap()
        for category_name in FEATURE_CATEGORIES:
            category = node_map.GetNode(category_name)
            if category is None:
                continue
            for feature in category.GetFeatures():
                node = feature.GetNode()
                name = node.GetName()
                if (name in MANAGED_FEATURES or node.GetVisibility() > _VISIBLE_UP_TO
                        or node.GetAccessMode() not in (_READ_WRITE, _READ_ONLY)):
                    continue
                spec = _feature_spec(genicam, node_map.GetNode(name), name)
                if spec is not None:
                    specs.append(spec)
        return specs

    def _write_feature(self, name: str, value: Any) -> Any:
        from pypylon import genicam

        node = self._camera.GetNodeMap().GetNode(name)
        if isinstance(node, genicam.IEnumeration):
            node.FromString(value)
            return node.ToString()
        node.SetValue(value)
        return node.GetValue()


def _writable(camera: Any, *names: str) -> Any:
    """The first of the named features the camera lets one set, or None."""
    from pypylon import genicam

    for name in names:
        node = camera.GetNodeMap().GetNode(name)
        if node is not None and genicam.IsWritable(node):
            return getattr(camera, name)
    return None


def _fit(feature: Any, wanted: int) -> int:
    """The nearest value the feature takes at or below wanted (its limits, increment)."""
    value = min(max(wanted, int(feature.Min)), int(feature.Max))
    increment = max(1, int(feature.Inc))
    return int(feature.Min) + (value - int(feature.Min)) // increment * increment


def _feature_spec(genicam: Any, node: Any, name: str) -> PropertySpec | None:
    """One feature as a setting; None for a kind no editor takes (commands, strings)."""
    read_only = not genicam.IsWritable(node)
    if isinstance(node, genicam.IEnumeration):
        return PropertySpec(name, "choice", node.ToString(), choices=tuple(node.Symbolics),
                            read_only=read_only)
    if isinstance(node, genicam.IBoolean):
        return PropertySpec(name, "bool", bool(node.GetValue()), read_only=read_only)
    if isinstance(node, genicam.IInteger):
        return PropertySpec(name, "int", int(node.GetValue()), node.GetMin(), node.GetMax(),
                            node.GetInc(), read_only=read_only)
    if isinstance(node, genicam.IFloat):
        step = node.GetInc() if node.HasInc() else None
        return PropertySpec(name, "float", float(node.GetValue()), node.GetMin(),
                            node.GetMax(), step, read_only=read_only)
    return None
