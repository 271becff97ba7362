"""Any GenICam camera (GigE Vision, USB3 Vision) through Aravis (the `genicam` extra).

`genicam:ID` names a camera by the device id Aravis lists (`recorder-engine cameras`
shows them; "Aravis-Fake-FAKE01" is Aravis's fake GigE Vision camera), `genicam:N` the
N-th one. Aravis rather than Harvesters: it speaks GigE Vision and USB3 Vision itself,
as Debian packages, where Harvesters needs a vendor's GenTL producer (a .cti file) that
Debian does not ship. Python reaches it through GObject introspection (PyGObject).
Triggers, device counters and settings: engine/sources/machine_vision.py; the buffer's
frame id is the device frame counter, its timestamp the device clock.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

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

EXTRA = "genicam"  # pip install "recorder-workstation[genicam]" (+ Debian's gir1.2-aravis-0.8)
_BUFFERS = 8


def _aravis() -> Any:
    """Aravis through PyGObject, or a SourceError saying what to install."""
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError):
        raise SourceError(f"GenICam cameras need Aravis 0.8 and PyGObject: apt install "
                          f"gir1.2-aravis-0.8, then pip install "
                          f"'recorder-workstation[{EXTRA}]'") from None
    return Aravis


def list_genicam_cameras() -> list[dict[str, str]]:
    """The cameras Aravis sees (none without it): source, id, model, vendor, serial."""
    try:
        aravis = _aravis()
    except SourceError:
        return []
    aravis.update_device_list()
    return [{"source": f"genicam:{aravis.get_device_id(i)}", "id": aravis.get_device_id(i),
             "model": aravis.get_device_model(i), "vendor": aravis.get_device_vendor(i),
             "serial": aravis.get_device_serial_nbr(i)}
            for i in range(aravis.get_n_devices())]


class AravisSource(MachineVisionCamera):
    """One GenICam camera; see the module doc."""

    kind_label = "GenICam camera"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._camera: Any = None
        self._stream: Any = None
        super().__init__(*args, **kwargs)

    def _open_device(self) -> None:
        aravis = _aravis()
        aravis.update_device_list()
        ids = [aravis.get_device_id(i) for i in range(aravis.get_n_devices())]
        target = str(self._target).partition(":")[2].strip()
        found = next((i for index, i in enumerate(ids) if target in (i, str(index))), None)
        if found is None:
            raise SourceError(f"no {self.kind_label} {target!r} (Aravis sees: "
                              f"{', '.join(ids) or 'none'})")
        camera = self._camera = aravis.Camera.new(found)
        name, self._conversion = choose_format(
            camera.dup_available_pixel_formats_as_strings(), f"{self.kind_label} {self.name}",
            self._options["pixel_format"])
        camera.set_pixel_format_from_string(name)
        camera.set_region(0, 0, int(self._requested["width"]), int(self._requested["height"]))
        camera.set_acquisition_mode(aravis.AcquisitionMode.CONTINUOUS)
        trigger = self._options["trigger"]
        if trigger == "free":
            camera.clear_triggers()
            camera.set_frame_rate(float(self._requested["fps"]))
        elif trigger == "software":
            camera.set_trigger("Software")
        else:
            camera.set_trigger(self._options["trigger_line"])
            camera.get_device().set_string_feature_value("TriggerActivation",
                                                         self._options["trigger_edge"])
        _x, _y, width, height = camera.get_region()
        fps = camera.get_frame_rate() if trigger == "free" else float(self._requested["fps"])
        self._actual = {"width": int(width), "height": int(height), "fps": float(fps)
                        } | format_actual(name)
        # The delivered pixels' shape: RGB/BGR three channels, Bayer and mono one.
        self._shape = (int(height), int(width), 3 if name.startswith(("RGB", "BGR")) else 1)
        stream = self._stream = camera.create_stream(None, None)
        payload = camera.get_payload()
        for _ in range(_BUFFERS):
            stream.push_buffer(aravis.Buffer.new_allocate(payload))
        camera.start_acquisition()

    def _close_device(self) -> None:
        camera, self._camera, self._stream = self._camera, None, None
        if camera is not None:
            with contextlib.suppress(Exception):  # a camera that is gone is closed enough
                camera.stop_acquisition()

    def _fire_trigger(self, moment_ns: int) -> int:
        sleep_until_ns(moment_ns)
        fired_ns = time.monotonic_ns()
        self._camera.software_trigger()
        return fired_ns

    def _grab_result(self) -> tuple[Picture, int] | None:
        stream = self._stream
        if stream is None:
            return None
        buffer = stream.timeout_pop_buffer(int(self._options["read_timeout_ms"]) * 1000)
        if buffer is None:
            return None
        try:
            arrived_ns = time.monotonic_ns()
            frame_id, device_ns = int(buffer.get_frame_id()), int(buffer.get_timestamp()) or -1
            if buffer.get_status() != _aravis().BufferStatus.SUCCESS:
                return (None, frame_id, -1), arrived_ns
            pixels = np.frombuffer(buffer.get_data(), np.uint8)
            height, width, channels = self._shape
            return (pixels[: height * width * channels].reshape(self._shape).copy()
                    if channels == 3 else pixels[: height * width].reshape(height, width).copy(),
                    frame_id, device_ns), arrived_ns
        finally:
            stream.push_buffer(buffer)

    def _feature_specs(self) -> list[PropertySpec]:
        """The features of FEATURE_CATEGORIES with their type, limits, increment, entries
        and whether they may be written now, as the camera's GenICam XML says."""
        camera = self._camera
        if camera is None:
            return []
        aravis = _aravis()
        device = camera.get_device()
        genicam = device.get_genicam()
        visible = (aravis.GcVisibility.BEGINNER, aravis.GcVisibility.EXPERT)
        specs = []
        for category_name in FEATURE_CATEGORIES:
            category = genicam.get_node(category_name)
            if category is None:
                continue
            for name in category.get_features():
                node = genicam.get_node(name)
                if (name in MANAGED_FEATURES or not node.is_available()
                        or node.get_visibility() not in visible):
                    continue
                spec = _feature_spec(aravis, device, node, name)
                if spec is not None:
                    specs.append(spec)
        return specs

    def _write_feature(self, name: str, value: Any) -> Any:
        device = self._camera.get_device()
        node = device.get_genicam().get_node(name)
        aravis = _aravis()
        if isinstance(node, aravis.GcEnumeration):
            device.set_string_feature_value(name, value)
            return device.get_string_feature_value(name)
        if isinstance(node, aravis.GcBoolean):
            device.set_boolean_feature_value(name, bool(value))
            return device.get_boolean_feature_value(name)
        if isinstance(value, float):
            device.set_float_feature_value(name, value)
            return device.get_float_feature_value(name)
        device.set_integer_feature_value(name, int(value))
        return device.get_integer_feature_value(name)


def _feature_spec(aravis: Any, device: Any, node: Any, name: str) -> PropertySpec | None:
    """One feature as a setting; None for a kind no editor takes (commands, strings)."""
    read_only = node.get_actual_access_mode() != aravis.GcAccessMode.RW
    if isinstance(node, aravis.GcEnumeration):
        return PropertySpec(name, "choice", device.get_string_feature_value(name),
                            choices=tuple(device.dup_available_enumeration_feature_values_as_strings(name)),
                            read_only=read_only)
    if isinstance(node, aravis.GcBoolean):
        return PropertySpec(name, "bool", device.get_boolean_feature_value(name),
                            read_only=read_only)
    if isinstance(node, aravis.GcFloat):
        low, high = device.get_float_feature_bounds(name)
        return PropertySpec(name, "float", device.get_float_feature_value(name), low, high,
                            read_only=read_only)
    if isinstance(node, aravis.GcInteger):
        low, high = device.get_integer_feature_bounds(name)
        return PropertySpec(name, "int", device.get_integer_feature_value(name), low, high,
                            device.get_integer_feature_increment(name), read_only=read_only)
    return None
