"""The synthetic camera's realistic content: texture, motion and fresh sensor noise, so that
encoder costs measured on it are a real camera's; the frame stamp still reads after H.264."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from engine.capture.group import CaptureGroup
from engine.cli import build_parser, camera_specs
from engine.recording.encoder import VideoEncoder
from engine.recording.verify import verify_recording
from engine.rig import RigError, load_rig
from engine.sources import SettingRejected, framecode
from engine.sources.synthetic import SyntheticSource
from engine.specs import CameraSpec
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(90)


def realistic(camera_index: int = 0, width: int = 320, height: int = 240,
              **settings) -> SyntheticSource:
    source = SyntheticSource(camera_index, width, height, 30.0,
                             {"paced": False, "content": "realistic", **settings})
    source.open()
    return source


def frames(source: SyntheticSource, numbers: range) -> list[np.ndarray]:
    """Frames of the given numbers, below the stamp's band (as int16, for differences)."""
    settings = source.settings()
    out = np.empty((settings["height"], settings["width"], 3), np.uint8)
    band = framecode.band_height(settings["width"])
    pictures = []
    for number in numbers:
        assert source.grab()
        source.retrieve(out, number)
        stamp = framecode.read(out)  # burned over the noise: reads exactly
        assert stamp is not None and stamp[0] == number
        pictures.append(out[band:].astype(np.int16))
    return pictures


@pytest.mark.parametrize("noise", [4.0, 12.0])
def test_noise_has_the_set_deviation_and_is_new_in_every_frame(noise):
    """The same camera without noise shows the same picture, so the difference is the
    noise alone: its deviation is the setting, and no two of 8 frames share it."""
    numbers = range(100, 108)
    noisy = frames(realistic(3, noise=noise), numbers)
    clean = frames(realistic(3, noise=0.0), numbers)
    noises = [a - b for a, b in zip(noisy, clean, strict=True)]
    for field in noises:
        assert abs(field.mean()) < 0.1
        assert field.std() == pytest.approx(noise, rel=0.03)  # rounded to grey levels
    flat = np.array([field.ravel() for field in noises], np.float64)
    correlations = np.corrcoef(flat)[np.triu_indices(len(noises), 1)]
    assert np.abs(correlations).max() < 0.02


@pytest.mark.parametrize(("width", "height"), [(320, 240), (1280, 720)])
def test_the_view_moves_in_every_frame(width, height):
    """Without noise the drift alone must change most of the picture every frame: a view
    standing still for frames at a time would be cheap to encode."""
    pictures = frames(realistic(width=width, height=height, noise=0.0), range(500, 530))
    for before, after in itertools.pairwise(pictures):
        assert np.any(before != after, axis=2).mean() > 0.5


def test_exposure_and_brightness_light_realistic_content():
    source = realistic(noise=0.0)
    (before,) = frames(source, range(5, 6))
    source.apply({"brightness": 40})
    (brighter,) = frames(source, range(5, 6))
    assert np.median(brighter - before) == 40
    source.apply({"brightness": 0, "exposure": 10.0})  # gain 1.1 against 0.92
    (exposed,) = frames(source, range(5, 6))
    assert np.median(exposed / np.maximum(before, 1)) == pytest.approx(1.1 / 0.92, rel=0.02)


def encoded_bytes(path: Path, **settings) -> int:
    source = SyntheticSource(0, 640, 480, 30.0, {"paced": False, **settings})
    source.open()
    out = np.empty((480, 640, 3), np.uint8)
    with VideoEncoder(path, "h264", 640, 480, 30.0) as encoder:
        for number in range(30):
            assert source.grab()
            source.retrieve(out, number)
            encoder.write(out)
    return path.stat().st_size


def test_realistic_content_costs_the_encoder_what_a_camera_does(tmp_path):
    clean = encoded_bytes(tmp_path / "clean.mkv")
    real = encoded_bytes(tmp_path / "realistic.mkv", content="realistic", noise=4.0)
    assert real >= 5 * clean, (real, clean)


@pytest.mark.parametrize("clock", ["gated", "free"])
def test_a_group_of_realistic_cameras_records_readable_stamps_and_verifies(tmp_path, clock):
    cameras = [CameraSpec(f"cam{i}", "synthetic", 320, 240, 30.0,
                          {"content": "realistic", "clock": clock}) for i in range(2)]
    with CaptureGroup(cameras) as group:
        recording = group.start_recording(tmp_path, "h264", name="realistic")
        start = min(group.counts())
        wait_for(lambda: min(group.counts()) >= start + 30, 20.0, "30 recorded frame sets")
        group.stop_recording()
    report = verify_recording(recording.folder)
    assert report.ok, report.summary()
    for index in range(2):
        with av.open(str(recording.folder / f"cam{index}.mkv")) as container:
            stamps = [framecode.read(frame.to_ndarray(format="bgr24"))
                      for frame in container.decode(video=0)]
        assert len(stamps) >= 30
        assert all(stamp is not None and stamp[1] == index for stamp in stamps)


def test_content_and_noise_are_offered_and_say_when_they_apply():
    source = SyntheticSource(0, 320, 240, 30.0)
    specs = {spec.name: spec for spec in source.properties()}
    assert specs["content"].choices == ("clean", "realistic")
    assert specs["content"].default == "clean" and specs["noise"].default == 4.0
    assert (specs["noise"].minimum, specs["noise"].maximum) == (0, 30)
    assert specs["noise"].inactive and not specs["pattern"].inactive
    source.apply({"content": "realistic", "noise": "6"})
    specs = {spec.name: spec for spec in source.properties()}
    assert specs["pattern"].inactive and not specs["noise"].inactive
    assert (specs["content"].value, specs["noise"].value) == ("realistic", 6.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"content": "photo"}, "content must be one of clean, realistic"),
        ({"noise": -1}, "noise must be >= 0"),
        ({"noise": 31}, "noise must be <= 30"),
        ({"noise": "loud"}, "noise must be a number"),
    ],
)
def test_bad_content_or_noise_is_rejected_naming_the_setting(settings, message):
    with pytest.raises(SettingRejected, match=message):
        SyntheticSource(0, 320, 240, 30.0, settings)
    source = SyntheticSource(0, 320, 240, 30.0)
    with pytest.raises(SettingRejected, match=message):
        source.apply(settings)
    assert source.settings()["content"] == "clean"


def test_a_rig_sets_the_content(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text('[[cameras]]\nsource = "synthetic"\n\n[cameras.settings]\n'
                    'content = "realistic"\nnoise = 8.0\n')
    assert load_rig(path).cameras[0].settings == {"content": "realistic", "noise": 8.0}
    path.write_text('[[cameras]]\nsource = "synthetic"\n\n[cameras.settings]\n'
                    'content = "film"\n')
    with pytest.raises(RigError, match=r"cameras\[0\]\.settings\.content: must be one of"):
        load_rig(path)


def test_record_demo_takes_the_content_for_its_cameras():
    parser = build_parser()
    base = ["record", "--demo", "2", "--seconds", "1", "--output", "out"]
    demo = camera_specs(parser.parse_args([*base, "--content", "realistic"]), None)
    assert [camera.settings["content"] for camera in demo] == ["realistic", "realistic"]
    assert demo[0].settings["clock"] == "free"  # still the demo rig's free-running cameras
    default = camera_specs(parser.parse_args(base), None)
    assert [camera.settings["content"] for camera in default] == ["clean", "clean"]
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--content", "film"])
