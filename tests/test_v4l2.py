"""USB cameras through V4L2: the driver's answers parsed (recorded from a Logitech C920,
tests/c920_driver.py), the capture format chosen, controls set and read back, stable
names, and discovery's USB listing from a fake /dev and sysfs tree.

There is no camera (and no v4l2loopback) on the machines these run on; the one test that
needs a device says so when it skips.
"""

from __future__ import annotations

import errno
import glob
import json
import logging
from pathlib import Path

import pytest

from engine.cli import device_summary
from engine.sources import Kind, SettingRejected, create_source, parse_source
from engine.sources.capture_format import choose_format, format_modes, offered_formats
from engine.sources.discovery import shared_bus_warnings, usb_cameras, usb_device
from engine.sources.opencv_source import DeviceSource
from engine.sources.v4l2_device import Mode, V4L2Device, control_name, read_controls, read_modes
from tests.c920_driver import C920Driver

BY_ID = "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8E7D3B2F-video-index0"
BY_PATH = "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0"


# -- the driver's answers -------------------------------------------------------------------


def test_modes_are_every_format_size_and_rate_the_driver_lists():
    modes = read_modes(C920Driver())
    assert Mode("MJPG", 1920, 1080, 30.0) in modes
    assert Mode("YUYV", 1920, 1080, 5.0) in modes and Mode("YUYV", 1920, 1080, 30.0) not in modes
    assert Mode("YUYV", 1600, 896, 7.5) in modes  # 2/15 s per frame
    assert Mode("YUYV", 2304, 1536, 2.0) in modes
    assert {mode.fourcc for mode in modes} == {"MJPG", "YUYV", "H264"}
    assert len([m for m in modes if m.fourcc == "MJPG"]) == 17 * 7


def test_controls_carry_the_drivers_types_limits_menus_values_and_flags():
    controls = {c.name: c for c in read_controls(C920Driver())}
    assert list(controls) == [
        "brightness", "contrast", "saturation", "white_balance_automatic", "gain",
        "power_line_frequency", "white_balance_temperature", "sharpness",
        "backlight_compensation", "auto_exposure", "exposure_time_absolute",
        "exposure_dynamic_framerate", "pan_absolute", "tilt_absolute", "focus_absolute",
        "focus_automatic_continuous", "zoom_absolute"]  # class headers left out
    temperature = controls["white_balance_temperature"]
    assert (temperature.kind, temperature.minimum, temperature.maximum, temperature.step,
            temperature.default, temperature.value) == ("int", 2000, 6500, 1, 4000, 4000)
    assert temperature.inactive and not temperature.read_only  # automatic white balance is on
    assert controls["white_balance_automatic"].kind == "bool"
    assert controls["white_balance_automatic"].shown(1) is True
    power = controls["power_line_frequency"]
    assert power.kind == "menu" and power.menu == {0: "Disabled", 1: "50 Hz", 2: "60 Hz"}
    assert power.shown(power.value) == "60 Hz"
    exposure = controls["auto_exposure"]
    assert exposure.menu == {1: "Manual Mode", 3: "Aperture Priority Mode"}
    assert exposure.label == "Auto Exposure"
    assert controls["focus_absolute"].step == 5 and controls["focus_absolute"].inactive
    assert controls["pan_absolute"].minimum == -36000


def test_a_control_outside_the_standard_ones_is_named_as_v4l2_ctl_names_it():
    assert control_name(0x0A046D05, "LED1 Mode") == "led1_mode"
    assert control_name(0x0A046D06, "Focus, Automatic Continuous") == "focus_automatic_continuous"
    assert control_name(0x009A0902, "Exposure (Absolute)") == "exposure_time_absolute"  # old kernel
    assert control_name(0x0A046D07, "…") == "control_0a046d07"


def test_a_control_is_set_and_every_control_read_back():
    driver = C920Driver()
    device = V4L2Device(driver)
    with pytest.raises(OSError) as refused:  # inactive while the automatic mode is on
        device.set("white_balance_temperature", 5000)
    assert refused.value.errno == errno.EACCES
    assert device.set("white_balance_automatic", False).value == 0
    assert not device.controls()["white_balance_temperature"].inactive  # read again
    assert device.set("white_balance_temperature", 5000).value == 5000
    assert device.set("auto_exposure", "Manual Mode").value == 1
    assert device.set("power_line_frequency", 1).shown(1) == "50 Hz"  # an index is taken too
    with pytest.raises(ValueError, match="entries: Manual Mode, Aperture Priority Mode"):
        device.set("auto_exposure", "Shutter Priority Mode")
    device.close()
    assert driver.closed


def test_a_metadata_node_does_not_capture_video():
    assert V4L2Device(C920Driver()).capture_capable
    assert not V4L2Device(C920Driver(metadata_node=True)).capture_capable


# -- the capture format ----------------------------------------------------------------------


C920_MODES = read_modes(C920Driver())


def test_mjpg_by_default_where_the_camera_offers_the_size_and_rate():
    assert offered_formats(C920_MODES) == ("MJPG", "YUYV")  # no reader decodes its H.264
    assert choose_format(C920_MODES, 1920, 1080, 30) == "MJPG"
    assert choose_format(C920_MODES, 640, 480, 30) == "MJPG"  # both can: MJPG


def test_yuyv_where_mjpg_does_not_offer_the_size():
    assert choose_format(C920_MODES, 2304, 1536, 2) == "YUYV"
    yuyv_only = [mode for mode in C920_MODES if mode.fourcc != "MJPG"]
    assert choose_format(yuyv_only, 1920, 1080, 30) == "YUYV"
    assert choose_format([], 1920, 1080, 30) is None  # nothing listed: the driver chooses


def test_the_users_format_where_the_camera_offers_it():
    assert choose_format(C920_MODES, 1920, 1080, 30, "YUYV") == "YUYV"
    assert choose_format(C920_MODES, 1920, 1080, 30, "H264") == "MJPG"  # not readable
    assert choose_format(C920_MODES, 1920, 1080, 30, "NV12") == "MJPG"  # not offered


def test_the_modes_to_pick_are_the_formats_own_or_every_readable_ones():
    every = format_modes(C920_MODES)
    assert every[0] == (2304, 1536, 2.0) and (1920, 1080, 30.0) in every
    assert (1920, 1080, 30.0) not in format_modes(C920_MODES, "YUYV")
    assert (2304, 1536, 2.0) not in format_modes(C920_MODES, "MJPG")


# -- DeviceSource: properties from the driver, controls set through it --------------------


def c920_source(settings: dict | None = None) -> tuple[DeviceSource, C920Driver]:
    """A DeviceSource whose driver answers as the C920 (its frames are not read)."""
    source = create_source("/dev/video0", 0, 1920, 1080, 30, settings)
    assert isinstance(source, DeviceSource)
    driver = C920Driver()
    source._device = V4L2Device(driver)
    return source, driver


def test_every_driver_control_is_a_property_with_its_real_kind_limits_and_menu():
    source, _driver = c920_source()
    specs = {spec.name: spec for spec in source.properties()}
    assert specs["fourcc"].choices == ("auto", "MJPG", "YUYV") and specs["fourcc"].value == "auto"
    assert (1920, 1080, 30.0) in specs["width"].modes
    temperature = specs["white_balance_temperature"]
    assert (temperature.kind, temperature.minimum, temperature.maximum, temperature.step,
            temperature.default, temperature.inactive) == ("int", 2000, 6500, 1, 4000, True)
    power = specs["power_line_frequency"]
    assert (power.kind, power.choices, power.value, power.default) == (
        "choice", ("Disabled", "50 Hz", "60 Hz"), "60 Hz", "60 Hz")
    assert specs["focus_automatic_continuous"].kind == "bool"
    assert specs["focus_absolute"].step == 5
    assert specs["pixel_format"].read_only


def test_controls_are_set_switches_first_and_settings_report_the_read_back():
    source, driver = c920_source()
    settings = source.apply({"white_balance_temperature": 5000,
                             "white_balance_automatic": False})
    assert driver.sets == [(0x0098090C, 0), (0x0098091A, 5000)]
    assert settings["white_balance_temperature"] == 5000
    assert settings["white_balance_automatic"] is False
    specs = {spec.name: spec for spec in source.properties()}
    assert not specs["white_balance_temperature"].inactive


def test_a_refused_control_is_rejected_and_the_ones_set_before_restored():
    source, driver = c920_source()
    with pytest.raises(SettingRejected, match="refused exposure_time_absolute=100: Permission"):
        source.apply({"gain": 10, "exposure_time_absolute": 100})  # exposure is automatic
    assert driver.values[0x00980913] == 0 and source.settings()["gain"] == 0
    with pytest.raises(SettingRejected, match="focus_absolute must be a multiple of 5"):
        source.apply({"focus_absolute": 7})
    with pytest.raises(SettingRejected, match="gain must be <= 255"):
        source.apply({"gain": 300})


def test_an_old_rigs_control_names_and_numbers_still_work():
    source, driver = c920_source()
    settings = source.apply({"auto_exposure": 1, "exposure": 300})
    assert settings["auto_exposure"] == "Manual Mode"
    assert settings["exposure_time_absolute"] == 300
    assert driver.sets == [(0x009A0901, 1), (0x009A0902, 300)]


def test_controls_named_before_open_are_set_at_open_or_noted(caplog):
    source = create_source("/dev/video0", 0, 1920, 1080, 30, {
        "focus_absolute": 40, "focus_automatic_continuous": False, "zoom": 2, "gain": 999})
    assert source.settings()["focus_absolute"] == 40  # kept, unchecked, until open
    driver = C920Driver()
    source._device = V4L2Device(driver)  # what open() does before it sets them
    with caplog.at_level(logging.WARNING):
        source._set_wanted()
    assert driver.values[0x009A090C] == 0 and driver.values[0x009A090A] == 40
    assert "has no control 'zoom'" in caplog.text and "gain must be <= 255" in caplog.text


def test_a_control_setting_before_open_must_look_like_one():
    with pytest.raises(SettingRejected, match="unknown setting 'Zoom'"):
        create_source("0", 0, 640, 480, 30, {"Zoom": 2})
    with pytest.raises(SettingRejected, match="gain must be a number"):
        create_source("0", 0, 640, 480, 30, {"gain": [1]})


def test_h264_is_not_offered_saying_why():
    with pytest.raises(SettingRejected, match="fourcc H264 is not offered: OpenCV's V4L2 "
                                              "reader cannot decode"):
        create_source("0", 0, 640, 480, 30, {"fourcc": "H264"})
    assert create_source("0", 0, 640, 480, 30, {"fourcc": "MJPG"}).settings()["fourcc"] == "MJPG"


# -- stable names ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [BY_ID, BY_PATH])
def test_stable_device_names_are_devices_opened_through_the_name(text):
    parsed = parse_source(text)
    assert (parsed.kind, parsed.target) == (Kind.DEVICE, text)
    assert create_source(text, 0, 640, 480, 30)._node() == str(Path(text).resolve())


def test_a_stable_name_of_a_missing_camera_fails_at_open_naming_it():
    source = create_source(BY_ID, 0, 640, 480, 30)
    with pytest.raises(Exception, match=f"cannot open camera {BY_ID}: device not found"):
        source.open()
    source.close()


# -- discovery -------------------------------------------------------------------------------


def fake_machine(tmp_path: Path, cameras: list[tuple[str, int, str, str]]) -> tuple[Path, Path]:
    """/dev and /sys for (node, USB bus, port, serial) cameras, each with a metadata node
    after it, as udev and uvcvideo lay them out."""
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    for folder in (dev / "v4l" / "by-id", dev / "v4l" / "by-path",
                   sysfs / "class" / "video4linux"):
        folder.mkdir(parents=True)
    for node, bus, port, serial in cameras:
        number = int(node.removeprefix("video"))
        usb = sysfs / "devices" / "pci0000:00" / f"usb{bus}" / f"{bus}-{port}"
        interface = usb / f"{bus}-{port}:1.0"
        interface.mkdir(parents=True)
        (usb / "busnum").write_text(f"{bus}\n")
        if serial:
            (usb / "serial").write_text(f"{serial}\n")
        for index, name in enumerate((node, f"video{number + 1}")):
            (dev / name).touch()
            node_folder = sysfs / "class" / "video4linux" / name
            node_folder.mkdir()
            (node_folder / "name").write_text("HD Pro Webcam C920\n")
            (node_folder / "device").symlink_to(interface)
            by_id = f"usb-046d_HD_Pro_Webcam_C920{'_' + serial if serial else ''}" \
                    f"-video-index{index}"
            if serial or not (dev / "v4l" / "by-id" / by_id).exists():
                (dev / "v4l" / "by-id" / by_id).symlink_to(f"../../{name}")
            by_path = f"pci-0000:00:{13 + bus:02x}.0-usb-0:{port}:1.0-video-index{index}"
            (dev / "v4l" / "by-path" / by_path).symlink_to(f"../../{name}")
    return dev, sysfs


def opener_for(metadata_nodes: set[str]):
    return lambda path: C920Driver(metadata_node=Path(path).name in metadata_nodes)


def test_discovery_lists_each_camera_under_its_stable_name_with_modes_and_controls(tmp_path):
    dev, sysfs = fake_machine(tmp_path, [("video0", 1, "1", "8E7D3B2F")])
    cameras = usb_cameras(5, dev, sysfs, opener_for({"video1"}))
    assert len(cameras) == 1  # video1 is the metadata node
    camera = cameras[0]
    assert camera["source"] == str(dev / "v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8E7D3B2F"
                                         "-video-index0")
    assert camera["by_path"].endswith("usb-0:1:1.0-video-index0")
    assert (camera["node"], camera["usb_bus"], camera["description"]) == (
        str(dev / "video0"), 1, "HD Pro Webcam C920")
    assert (camera["width"], camera["height"], camera["fps"], camera["pixel_format"]) == (
        2304, 1536, 2.0, "YUYV")
    formats = {f["fourcc"]: f for f in camera["formats"]}
    assert [1920, 1080, 30.0] in formats["MJPG"]["modes"] and not formats["H264"]["readable"]
    controls = {c["name"]: c for c in camera["controls"]}
    assert controls["white_balance_temperature"]["flags"] == ["inactive", "slider"]
    assert controls["auto_exposure"]["menu"] == {"1": "Manual Mode",
                                                 "3": "Aperture Priority Mode"}
    assert camera["warnings"] == []
    json.dumps(cameras)  # `cameras --json` prints it as it is
    text = device_summary(camera)
    assert text[0].startswith(f"node {dev}/video0; USB bus 1; by-path ")
    assert text[1] == "YUYV  2304x1536@2, 2304x1296@2, 1920x1080@5, 1600x896@7.5 … (19 sizes)"
    assert "H264  not offered: no reader decodes it" in text
    assert text[-1].startswith("controls: brightness, contrast, saturation")


def test_a_camera_without_a_serial_number_is_stored_by_its_port(tmp_path):
    """Two such cameras would share one by-id name: the port tells them apart."""
    dev, sysfs = fake_machine(tmp_path, [("video0", 1, "1", ""), ("video2", 3, "2", "")])
    cameras = usb_cameras(5, dev, sysfs, opener_for({"video1", "video3"}))
    assert [Path(c["source"]).parent.name for c in cameras] == ["by-path", "by-path"]
    assert cameras[0]["source"] != cameras[1]["source"]


def test_cameras_sharing_a_usb_bus_are_warned_about(tmp_path):
    dev, sysfs = fake_machine(tmp_path, [("video0", 1, "1", "A1"), ("video2", 1, "2", "B2"),
                                         ("video4", 2, "1", "C3")])
    cameras = usb_cameras(5, dev, sysfs, opener_for({"video1", "video3", "video5"}))
    assert [c["usb_bus"] for c in cameras] == [1, 1, 2]
    warning = (f"HD Pro Webcam C920 ({dev}/video0) and HD Pro Webcam C920 ({dev}/video2) "
               "share USB bus 1: at high resolutions they may not both get full rate")
    assert cameras[0]["warnings"] == cameras[1]["warnings"] == [warning]
    assert cameras[2]["warnings"] == []
    assert f"warning: {warning}" in device_summary(cameras[0])
    three = [{"usb_bus": 4, "description": "cam", "node": n} for n in ("a", "b", "c")]
    assert shared_bus_warnings(three)[0][0] == (
        "cam (a), cam (b) and cam (c) share USB bus 4: at high resolutions they may not all "
        "get full rate")


def test_a_node_outside_usb_has_no_bus(tmp_path):
    assert usb_device(tmp_path, "video0") is None


# -- a real device, where there is one -------------------------------------------------------


@pytest.mark.skipif(not glob.glob("/dev/video*"),
                    reason="no V4L2 device on this machine (no camera, no v4l2loopback)")
def test_a_real_device_answers():
    for node in sorted(glob.glob("/dev/video*")):
        with V4L2Device.open(node) as device:
            if device.capture_capable:
                assert all(control.name for control in device.controls().values())
                return
    pytest.skip("no V4L2 node here captures video")
