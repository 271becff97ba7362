"""The encoder a take gets: x264's preset and threads from the rig, hardware H.264 encoders
found by probing them, and x264 in their place when the machine lacks them (this one has
neither NVENC nor Quick Sync, so a present one is simulated) — named in the manifest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.capture.group import CaptureGroup
from engine.cli import build_parser
from engine.recording import encoder_choice
from engine.recording.encoder import VideoEncoder
from engine.recording.encoder_choice import EncoderChoice, choose_encoder
from engine.recording.errors import RecordingError
from engine.recording.verify import verify_recording
from engine.rig import RigError, load_rig
from engine.specs import CameraSpec
from tests.conftest import leak_guard
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(90)


def x264_settings(path: Path) -> dict[str, str]:
    """The settings x264 writes into its stream ("options: cabac=0 ref=1 ... threads=2")."""
    found = re.search(rb"options: ([ -~]+)", path.read_bytes())
    assert found, f"{path.name} holds no x264 settings"
    return dict(item.split("=", 1) for item in found.group(1).decode().split() if "=" in item)


def needs_no(encoder: str) -> str:
    """Why this machine lacks encoder; skips a test that relies on its absence."""
    reason = encoder_choice.unavailable(encoder)
    if reason is None:
        pytest.skip(f"this machine has {encoder}")
    return reason


# --- choosing ----------------------------------------------------------------------------


def test_a_probe_that_cannot_open_the_encoder_reports_it_missing(monkeypatch):
    def no_device(*args, **kwargs):
        raise RecordingError("cannot create video file probe.mkv: no such device")

    monkeypatch.setattr(encoder_choice, "VideoEncoder", no_device)
    assert encoder_choice.unavailable.__wrapped__("h264_qsv") == (
        "cannot create video file probe.mkv: no such device")


def test_the_real_probe_gives_ffmpegs_reason_and_is_cached():
    reason = needs_no("h264_nvenc")
    assert reason and "avcodec_open2" not in reason  # FFmpeg's own line, not PyAV's error
    assert encoder_choice.unavailable("h264_nvenc") is reason  # probed once


@pytest.mark.parametrize(("present", "codec", "expected"), [
    ((), "auto", EncoderChoice("h264", "libx264")),
    (("h264_qsv",), "auto", EncoderChoice("h264", "h264_qsv")),
    (("h264_nvenc", "h264_qsv"), "auto", EncoderChoice("h264", "h264_nvenc")),
    (("h264_nvenc",), "nvenc", EncoderChoice("h264", "h264_nvenc")),
    (("h264_nvenc",), "qsv",
     EncoderChoice("h264", "libx264", fallback="h264_qsv is not available: no device")),
    ((), "mjpeg", EncoderChoice("mjpeg", "mjpeg")),
])
def test_auto_takes_the_first_present_and_a_missing_one_falls_back(
        monkeypatch, present, codec, expected):
    monkeypatch.setattr(encoder_choice, "unavailable",
                        lambda encoder: None if encoder in present else "no device")
    assert choose_encoder(codec) == expected


def test_auto_never_reaches_the_encoder_and_unknown_codecs_are_refused(tmp_path):
    with pytest.raises(RecordingError, match="unknown codec 'auto'"):
        VideoEncoder(tmp_path / "cam.mkv", "auto", 64, 48, 30.0)
    with pytest.raises(RecordingError, match=r"'vp9': choose one of h264, .*auto, nvenc, qsv"):
        choose_encoder("vp9")


def test_the_rig_refuses_a_preset_and_threads_x264_does_not_have(tmp_path):
    path = tmp_path / "rig.toml"
    for line, expected in [
        ('h264_preset = "nope"', 'recording.h264_preset: must be one of ultrafast, '
                                 'superfast, veryfast, faster, fast, medium, slow, slower, '
                                 'veryslow, got "nope"'),
        ("encoder_threads = 17", "recording.encoder_threads: must be an integer in [1, 16], "
                                 "got 17"),
    ]:
        path.write_text(f'[recording]\ncodec = "auto"\n{line}\n\n[[cameras]]\n'
                        'source = "synthetic"\n')
        with pytest.raises(RigError) as caught:
            load_rig(path)
        assert str(caught.value) == f"{path}:3: {expected}"
    path.write_text('[recording]\nh264_preset = "veryfast"\nencoder_threads = 4\n\n'
                    '[[cameras]]\nsource = "synthetic"\n')
    options = load_rig(path).recording
    assert (options.h264_preset, options.encoder_threads) == ("veryfast", 4)


def test_record_takes_a_preset_and_the_hardware_codecs():
    args = build_parser().parse_args(["record", "--demo", "1", "--seconds", "1", "--output",
                                      "out", "--codec", "auto", "--preset", "veryfast"])
    assert (args.codec, args.preset) == ("auto", "veryfast")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["record", "--demo", "1", "--seconds", "1", "--output",
                                   "out", "--preset", "nope"])


# --- takes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def group():
    """Two small synthetic cameras, shared by the takes below (start-up costs seconds)."""
    cameras = [CameraSpec(f"cam{i}", "synthetic", 256, 192, 30.0) for i in range(2)]
    with leak_guard(), CaptureGroup(cameras) as running:
        yield running


def record(group: CaptureGroup, folder: Path, codec: str, **encoding) -> dict:
    """A short take, verified; its manifest."""
    recording = group.start_recording(folder, codec, name=codec, **encoding)
    wait_for(lambda: min(group.counts()) > recording.first_frame + 10, 10, "frames recorded")
    group.stop_recording()
    report = verify_recording(recording.folder)
    assert report.ok, report.problems
    return recording.manifest


def test_preset_and_threads_reach_x264(group, tmp_path):
    default = record(group, tmp_path / "default", "h264")
    chosen = record(group, tmp_path / "chosen", "h264", h264_preset="veryfast",
                    encoder_threads=3)
    for manifest, preset in ((default, "ultrafast"), (chosen, "veryfast")):
        for camera in manifest["cameras"]:
            assert (camera["encoder"], camera["preset"]) == ("libx264", preset)
            assert "encoder_fallback" not in camera
    plain = x264_settings(tmp_path / "default" / "h264" / "cam0.mkv")
    tuned = x264_settings(tmp_path / "chosen" / "h264" / "cam1.mkv")
    assert (plain["me"], plain["subme"], plain["threads"]) == ("dia", "0", "2")  # ultrafast
    assert (tuned["me"], tuned["subme"], tuned["threads"]) == ("hex", "2", "3")  # veryfast


def test_auto_records_with_x264_on_a_machine_without_hardware_encoders(group, tmp_path):
    needs_no("h264_nvenc")
    needs_no("h264_qsv")
    manifest = record(group, tmp_path, "auto")
    assert manifest["codec"] == "h264"
    for camera in manifest["cameras"]:
        assert camera["encoder"] == "libx264" and camera["pix_fmt"] == "yuv420p"
        assert "encoder_fallback" not in camera  # auto asked for nothing in particular


def test_nvenc_without_an_nvidia_device_falls_back_to_x264(group, tmp_path):
    reason = needs_no("h264_nvenc")
    manifest = record(group, tmp_path, "nvenc")
    assert manifest["codec"] == "h264" and manifest["status"] == "finalized"
    for camera in manifest["cameras"]:
        assert (camera["encoder"], camera["preset"]) == ("libx264", "ultrafast")
        assert camera["encoder_fallback"] == f"h264_nvenc is not available: {reason}"


def test_a_writer_whose_hardware_encoder_will_not_open_falls_back(group, tmp_path,
                                                                 monkeypatch):
    """The controller's probe passed (simulated), yet the writers cannot open h264_nvenc:
    each opens libx264 instead, the take goes on, the manifest says why."""
    needs_no("h264_nvenc")
    monkeypatch.setattr(encoder_choice, "unavailable", lambda encoder: None)
    manifest = record(group, tmp_path, "nvenc")
    assert manifest["status"] == "finalized"
    for camera in manifest["cameras"]:
        assert camera["encoder"] == "libx264"
        assert camera["encoder_fallback"].startswith("h264_nvenc did not open: ")
