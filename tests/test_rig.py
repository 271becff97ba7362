"""Rig files: round trips, the demo rig, and errors that name the file, line and key."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from engine.option import declared
from engine.rig import (
    DEMO_RIG_FILE,
    DeviceOptions,
    RecordingOptions,
    Rig,
    RigError,
    RigWarning,
    default_output_dir,
    demo_camera_settings,
    demo_rig,
    load_rig,
    rig_from_dict,
    rig_summary,
    save_rig,
)
from engine.specs import CameraSpec
from engine.supervisor.health import Policy

PASSWORD_URL = "rtsp://user:secret@10.0.0.5/s"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def write(folder: Path, text: str, name: str = "rig.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load_error(folder: Path, text: str) -> tuple[Path, str]:
    path = write(folder, text)
    with pytest.raises(RigError) as caught:
        load_rig(path)
    return path, str(caught.value)


def sample_rig(folder: Path, output: Path) -> Rig:
    clip = folder / "clips" / "clip.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"not really a video")
    return Rig(
        "bench",
        [
            CameraSpec("left", "synthetic", 320, 240, 15.0,
                       {"brightness": 10, "exposure": 1.5, "paced": False, "pattern": "bars"}),
            CameraSpec("usb", "0", 1280, 720, 30.0, {"fourcc": "MJPG"}),
            CameraSpec("door", PASSWORD_URL, 1920, 1080, 25.0),
            CameraSpec("replay", str(clip), 640, 480, 30.0),
        ],
        RecordingOptions(output, "ffv1", 5.0, auto_resume=True, sync_tolerance_ms=12.5),
        supervisor=Policy(stall_timeout_s=3.0, restart_limit=4, backoff_max_s=30.0),
        device=DeviceOptions("bench-1", 20.0, 2.0, ("10.0.0.1:80",), "/dev/gpiochip0", 5, "nmtui"),
    )


# --- save and load -----------------------------------------------------------------------


def test_a_saved_rig_loads_back_equal(tmp_path, home):
    rig = sample_rig(tmp_path, home / "Videos" / "rec")
    path = tmp_path / "rig.toml"
    save_rig(rig, path)
    assert load_rig(path) == rig
    text = path.read_text()
    assert 'output = "~/Videos/rec"' in text
    assert 'source = "clips/clip.mp4"' in text  # a file beside the rig stays relative
    assert PASSWORD_URL in text  # the user's file keeps the real source
    assert text.count("[[cameras]]") == 4 and "[cameras.settings]" in text


def test_the_sync_tolerance_is_saved_when_set_and_removed_when_unset(tmp_path):
    path = write(tmp_path, '[recording]\ncodec = "mjpeg"\n\n[[cameras]]\nsource = "synthetic"\n')
    rig = load_rig(path)
    assert rig.recording.sync_tolerance_ms is None  # one frame period, decided when verifying
    strict = replace(rig, recording=replace(rig.recording, sync_tolerance_ms=40.0))
    save_rig(strict, path)
    assert "sync_tolerance_ms = 40.0" in path.read_text()
    assert load_rig(path) == strict and load_rig(path).recording.sync_tolerance_ms == 40.0
    save_rig(replace(strict, recording=replace(strict.recording, sync_tolerance_ms=None)), path)
    assert "sync_tolerance_ms" not in path.read_text()


def test_an_output_folder_outside_home_is_written_as_is(tmp_path, home):
    rig = replace(demo_rig(1), recording=RecordingOptions(tmp_path / "out"))
    path = tmp_path / "rig.toml"
    save_rig(rig, path)
    assert f'output = "{tmp_path / "out"}"' in path.read_text()
    assert load_rig(path) == rig


def test_the_demo_file_is_the_demo_rig():
    assert load_rig(DEMO_RIG_FILE) == demo_rig(4)
    assert [c.camera_id for c in demo_rig(2, 320, 240, 15).cameras] == ["cam0", "cam1"]
    assert demo_rig(2, 320, 240, 15).camera("cam1") == CameraSpec(
        "cam1", "synthetic", 320, 240, 15.0,
        {"clock": "free", "rate_scale": 0.999, "jitter_ms": 1.0, "miss_probability": 0.001})


def test_rig_codecs_are_the_encoder_codecs():
    from engine.specs import CODEC_CHOICES

    codec = next(o for o in declared(RecordingOptions) if o.name == "codec")
    assert codec.option.choices is CODEC_CHOICES


def test_missing_keys_take_their_defaults(tmp_path):
    rig = load_rig(write(tmp_path, '[[cameras]]\nsource = "synthetic"\n\n[[cameras]]\n'
                                   'source = "synthetic"\nfps = 25\n'))
    assert rig.name == "rig"
    assert rig.recording == RecordingOptions()
    assert rig.recording.output_dir == default_output_dir()
    assert rig.cameras == [CameraSpec("cam0"), CameraSpec("cam1", fps=25.0)]
    assert isinstance(rig.cameras[1].fps, float)


def test_paths_are_taken_from_the_rig_folder(tmp_path, home, monkeypatch):
    rig_folder = tmp_path / "rigs"
    rig_folder.mkdir()
    (rig_folder / "clip.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    rig = load_rig(write(rig_folder, '[recording]\noutput = "recordings"\n\n'
                                     '[[cameras]]\nsource = "clip.mp4"\n\n'
                                     '[[cameras]]\nsource = 0\n'))
    assert rig.cameras[0].source == str(rig_folder / "clip.mp4")
    assert rig.cameras[1].source == "0"
    assert rig.recording.output_dir == rig_folder / "recordings"
    tilde = load_rig(write(rig_folder, '[recording]\noutput = "~/rec"\n'
                                       '[[cameras]]\nsource = "synthetic"\n'))
    assert tilde.recording.output_dir == home / "rec"


def test_a_relative_file_in_the_working_folder_only_is_not_found(tmp_path, monkeypatch):
    (tmp_path / "rigs").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    path, message = load_error(tmp_path / "rigs", '[[cameras]]\nsource = "clip.mp4"\n')
    assert message == (f"{path}:2: cameras[0].source: video file not found: "
                       f"{tmp_path / 'rigs' / 'clip.mp4'}")


# --- errors name the file, the line and the key ----------------------------------------------

TWO_CAMERAS = """\
name = "lab"

[recording]
codec = "h264"

[[cameras]]
id = "cam0"
source = "synthetic"
fps = 30.0

[[cameras]]
id = "cam1"
source = "synthetic"
{line14}
"""

INVALID = [
    ("fps = \"fast\"", '14: cameras[1].fps: must be a number in (0, 1000], got "fast"'),
    ("fps = 0", "14: cameras[1].fps: must be a number in (0, 1000], got 0"),
    ("width = 641", "14: cameras[1].width: must be an even number in 16..7680, got 641"),
    ("width = true", "14: cameras[1].width: must be an integer, got true"),
    ("height = 4322", "14: cameras[1].height: must be an even number in 16..4320, got 4322"),
    ("wdith = 640",
     "14: cameras[1].wdith: unknown key (expected id, source, width, height, fps, settings)"),
    ("settings = { pattern = [1, 2] }",
     "14: cameras[1].settings.pattern: must be a number, true/false or a string, got [1, 2]"),
    ("settings = 3", "14: cameras[1].settings: must be a table, got 3"),
    ("[cameras.settings]\npattern = { a = 1 }",
     "15: cameras[1].settings.pattern: must be a number, true/false or a string, got {'a': 1}"),
]


@pytest.mark.parametrize(("line14", "expected"), INVALID)
def test_a_camera_error_names_the_line_and_key(tmp_path, line14, expected):
    path, message = load_error(tmp_path, TWO_CAMERAS.format(line14=line14))
    assert message == f"{path}:{expected}"


@pytest.mark.parametrize(("text", "expected"), [
    ('[recording]\ncodec = "xvid"\n',
     '2: recording.codec: must be one of h264, mjpeg, ffv1, auto, nvenc, qsv, got "xvid"'),
    ("[recording]\n\ndevice_ready_timeout_s = -1\n",
     "3: recording.device_ready_timeout_s: must be a positive number, got -1"),
    ("[recording]\ndevice_ready_timeout_s = nan\n",
     "2: recording.device_ready_timeout_s: must be a positive number, got nan"),
    ("[recording]\nsync_tolerance_ms = 0\n",
     "2: recording.sync_tolerance_ms: must be a positive number, got 0"),
    ('[recording]\nsync_tolerance_ms = "40"\n',
     '2: recording.sync_tolerance_ms: must be a positive number, got "40"'),
    ("[supervisor]\nrestart_limit = 1.5\n",
     "2: supervisor.restart_limit: must be an integer >= 1, got 1.5"),
    ("[supervisor]\nrestart_limit = true\n",
     "2: supervisor.restart_limit: must be an integer >= 1, got true"),
    ("[recording]\noutput = 5\n", "2: recording.output: must be a folder path, got 5"),
    ("[recording]\nouptut = 'x'\n",
     "2: recording.ouptut: unknown key (expected output, codec, "
     "device_ready_timeout_s, multitrack, auto_resume, trigger, sync_tolerance_ms, "
     "h264_preset, encoder_threads, export_after)"),
    ("[recording]\nexport_after = ['nwb', 'gif']\n",
     "2: recording.export_after: must be a list of export formats (freemocap, skellycam, "
     "anipose, nwb, mkv), got ['nwb', 'gif']"),
    ("[supervisor]\nrestart_limit = 0\n",
     "2: supervisor.restart_limit: must be an integer >= 1, got 0"),
    ("[device]\nnetwork_targets = ['example.org']\n",
     '2: device.network_targets: must be a list of "host:port", got [\'example.org\']'),
    ("recording = 3\n", "1: recording: must be a table, got 3"),
    ('name = ""\n', '1: name: must be a non-empty string, got ""'),
    ('nmae = "x"\ncolour = 1\n',
     "1: nmae: unknown key (expected name, recording, supervisor, device, cameras, sensors; "
     "also unknown: colour)"),
])
def test_a_rig_error_names_the_line_and_key(tmp_path, text, expected):
    path, message = load_error(tmp_path, text + '\n[[cameras]]\nsource = "synthetic"\n')
    assert message == f"{path}:{expected}"


@pytest.mark.parametrize(("camera", "expected"), [
    ('id = "a/b"\nsource = "synthetic"', '3: cameras[0].id: must be a non-empty string '
                                         'without "/", got "a/b"'),
    ('id = ""\nsource = "synthetic"', '3: cameras[0].id: must be a non-empty string '
                                      'without "/", got ""'),
    ('id = "a"', "2: cameras[0].source: missing; expected 'synthetic'"),
    ('source = "synthetc"', "3: cameras[0].source: unknown camera source 'synthetc'"),
    ("source = true", "3: cameras[0].source: must be a string, got true"),
    ('source = "ftp://x"', "3: cameras[0].source: unknown camera source 'ftp://x'"),
])
def test_a_bad_camera_id_or_source_is_named(tmp_path, camera, expected):
    path, message = load_error(tmp_path, f'name = "x"\n[[cameras]]\n{camera}\n')
    assert message.startswith(f"{path}:{expected}")


def test_a_repeated_camera_id_names_both_lines(tmp_path):
    text = TWO_CAMERAS.format(line14="").replace('id = "cam1"', 'id = "cam0"')
    path, message = load_error(tmp_path, text)
    assert message == f'{path}: cameras: camera id "cam0" is used twice (lines 7 and 12)'


def test_a_default_id_can_clash_too(tmp_path):
    text = '[[cameras]]\nsource = "synthetic"\n\n[[cameras]]\nid = "cam0"\nsource = "synthetic"\n'
    path, message = load_error(tmp_path, text)
    assert message == f'{path}: cameras: camera id "cam0" is used twice (lines 1 and 5)'


def test_a_rig_needs_a_camera(tmp_path):
    path, message = load_error(tmp_path, 'name = "empty"\n')
    assert message == f"{path}: cameras: a rig needs at least one camera (a [[cameras]] table)"


def test_a_toml_syntax_error_gives_its_line(tmp_path):
    text = 'name = "x"\n\n[[cameras]]\nid = "a"\nsource = "synthetic"\n\nfps = 30 fps\n'
    path, message = load_error(tmp_path, text)
    assert message.startswith(f"{path}:7: invalid TOML: ")
    assert "column" in message


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(RigError, match=r"nope\.toml: cannot read the rig file"):
        load_rig(tmp_path / "nope.toml")


def test_errors_from_a_dict_say_rig():
    with pytest.raises(RigError) as caught:
        rig_from_dict({"cameras": [{"source": "synthetic", "fps": "fast"}]})
    assert str(caught.value) == '<rig>: cameras[0].fps: must be a number in (0, 1000], got "fast"'
    with pytest.raises(RigError, match=r"^<rig>: cameras: camera id \"a\" is used twice "
                                       r"\(cameras\[0\]\.id and cameras\[1\]\.id\)$"):
        rig_from_dict({"cameras": [{"id": "a", "source": "synthetic"}] * 2})
    with pytest.raises(RigError, match="at least one camera"):
        demo_rig(0)


# --- changing a rig --------------------------------------------------------------------------


def test_cameras_are_added_removed_and_changed_by_copying():
    rig = demo_rig(2)
    added = rig.with_camera(CameraSpec("door", PASSWORD_URL, fps=25))
    assert [c.camera_id for c in added.cameras] == ["cam0", "cam1", "door"]
    assert added.camera("door").fps == 25.0
    assert [c.camera_id for c in added.without_camera("cam0").cameras] == ["cam1", "door"]
    changed = rig.with_settings("cam1", {"width": 320, "height": 240, "brightness": 5})
    changed = changed.with_settings("cam1", {"fps": 15, "pattern": "bars"})
    assert changed.camera("cam1") == CameraSpec(  # merged into the demo camera's clock settings
        "cam1", "synthetic", 320, 240, 15.0,
        {**demo_camera_settings(1), "brightness": 5, "pattern": "bars"})
    assert changed.camera("cam0") == rig.camera("cam0")
    assert rig == demo_rig(2)  # the original is untouched


def test_rig_changes_are_checked():
    rig = demo_rig(2)
    with pytest.raises(RigError, match=r'^<rig>: cameras: camera id "cam1" is already in the rig'):
        rig.with_camera(CameraSpec("cam1"))
    with pytest.raises(RigError, match=r"^<rig>: cameras\[2\]\.source: unknown camera source"):
        rig.with_camera(CameraSpec("cam2", "nonsense"))
    with pytest.raises(RigError, match=r"^<rig>: cameras\[1\]\.width: must be an even number"):
        rig.with_settings("cam1", {"width": 641})
    with pytest.raises(RigError, match=r"^<rig>: cameras\[0\]\.settings\.x: must be a number"):
        rig.with_settings("cam0", {"x": None})
    with pytest.raises(RigError, match="only camera"):
        demo_rig(1).without_camera("cam0")
    for change in (lambda: rig.camera("nope"), lambda: rig.without_camera("nope"),
                   lambda: rig.with_settings("nope", {})):
        with pytest.raises(KeyError, match="nope"):
            change()


# --- what leaves the rig ---------------------------------------------------------------------


def test_the_summary_masks_passwords_and_is_json():
    rig = demo_rig(1).with_camera(CameraSpec("door", PASSWORD_URL,
                                             settings={"read_timeout_ms": 2000}))
    summary = rig_summary(rig)
    assert summary["cameras"][1] == {
        "id": "door", "source": "rtsp://user:***@10.0.0.5/s", "width": 640, "height": 480,
        "fps": 30.0, "settings": {"read_timeout_ms": 2000},
    }
    assert summary["name"] == "demo"
    assert summary["recording"]["output_dir"] == str(default_output_dir())
    assert summary["recording"]["codec"] == "h264"
    assert "secret" not in json.dumps(summary)


def test_saving_is_atomic_and_keeps_the_file_mode(tmp_path, monkeypatch):
    path = tmp_path / "rig.toml"
    save_rig(demo_rig(1), path)
    os.chmod(path, 0o600)
    save_rig(demo_rig(2), path)
    assert os.listdir(tmp_path) == ["rig.toml"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_rig(path) == demo_rig(2)

    def failing_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_rig(demo_rig(3), path)
    assert os.listdir(tmp_path) == ["rig.toml"]
    assert load_rig(path) == demo_rig(2)


def test_a_rig_that_would_not_load_back_is_not_saved(tmp_path):
    broken = replace(demo_rig(1), cameras=[CameraSpec("cam0", fps=0)])
    with pytest.raises(RigError, match=r"cameras\[0\]\.fps"):
        save_rig(broken, tmp_path / "rig.toml")
    assert os.listdir(tmp_path) == []


def test_sensors_load_save_and_are_checked(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(
        'name = "lab"\n\n[[cameras]]\nsource = "synthetic"\n\n'
        '[[sensors]]\nname = "imu"\nsource = "imu:synthetic"\n\n[sensors.settings]\nrate = 200\n'
    )
    rig = load_rig(path)
    assert [(s.name, s.source, s.settings) for s in rig.sensors] == [
        ("imu", "imu:synthetic", {"rate": 200})
    ]
    save_rig(rig, tmp_path / "again.toml")
    assert load_rig(tmp_path / "again.toml") == rig
    path.write_text(
        'name = "lab"\n\n[[cameras]]\nsource = "synthetic"\n\n'
        '[[sensors]]\nname = "imu"\nsource = "gyro:nope"\n'
    )
    with pytest.raises(RigError, match=r"rig.toml:8: sensors\[0\].source"):
        load_rig(path)


# --- saving keeps the user's file --------------------------------------------------------------


def test_saving_a_loaded_rig_keeps_its_comments(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(DEMO_RIG_FILE.read_text())
    comments = [line for line in DEMO_RIG_FILE.read_text().splitlines()
                if line.lstrip().startswith("#")]
    changed = load_rig(path).with_settings("cam1", {"fps": 15, "pattern": "bars"})
    changed = changed.with_camera(CameraSpec("door", PASSWORD_URL, fps=25))
    for rig in (changed, changed.without_camera("cam3")):  # cam3 precedes the examples
        save_rig(rig, path)
        text = path.read_text()
        assert [line for line in comments if line not in text] == []
        assert 'codec = "h264"                  # h264 (small files)' in text  # layout too
        assert load_rig(path) == rig


def test_saving_changes_only_what_differs(tmp_path, home):
    (tmp_path / "clip.mp4").write_bytes(b"x")
    path = write(tmp_path, '# my rig\n[recording]\noutput = "recordings"  # here\n\n'
                           '[[cameras]]\nsource = "clip.mp4"\nfps = 30  # keep\n\n'
                           '[[cameras]]\nid = "gone"\nsource = "synthetic"\n# gone too\n')
    rig = load_rig(path).without_camera("gone")
    rig = replace(rig, supervisor=Policy(restart_limit=2))
    save_rig(rig, path)
    assert path.read_text() == (
        '# my rig\n[recording]\noutput = "recordings"  # here\n\n'
        "[supervisor]\nrestart_limit = 2 # at most this many restarts in restart_window_s\n\n"
        '[[cameras]]\nsource = "clip.mp4"\nfps = 30  # keep\n\n'
    )
    assert load_rig(path) == rig


def test_a_rig_built_in_memory_saves_with_every_option_explained(tmp_path):
    path = tmp_path / "rig.toml"
    save_rig(demo_rig(1), path)
    text = path.read_text()
    assert "# how long a camera (and its writer) may take to be ready, in seconds\n" \
           "device_ready_timeout_s = 30.0\n" in text
    assert "# stall_timeout_s is not set" in text
    assert "# sync_tolerance_ms is not set" in text
    assert load_rig(path) == demo_rig(1)


def test_a_retired_option_warns_and_is_dropped_on_save(tmp_path):
    path = write(tmp_path, '[recording]\ncodec = "mjpeg"\nmax_queue_size = 400\n\n'
                           '[[cameras]]\nsource = "synthetic"\n')
    with pytest.warns(RigWarning) as caught:
        rig = load_rig(path)
    assert [str(w.message) for w in caught] == [
        f"{path}:3: recording.max_queue_size: no longer used, ignored (nothing read it)"]
    assert rig.recording.codec == "mjpeg"
    save_rig(rig, path)
    assert "max_queue_size" not in path.read_text()


def test_a_retired_camera_setting_warns_and_is_dropped_on_save(tmp_path):
    """reconnect_timeout_s was how long a network camera retried its stream inside the
    sync gate (issue 14.9: every other camera waited that long); it leaves the gate now."""
    path = write(tmp_path, '[[cameras]]\nsource = "rtsp://cam.local/s1"\n\n[cameras.settings]\n'
                           'read_timeout_ms = 2000\nreconnect_timeout_s = 10.0\n')
    with pytest.warns(RigWarning) as caught:
        rig = load_rig(path)
    assert [str(w.message) for w in caught] == [
        f"{path}:6: cameras[0].settings.reconnect_timeout_s: no longer used, ignored (a camera "
        "whose stream drops leaves the sync gate at once and reconnects outside it until its "
        "stream is back)"]
    assert rig.cameras[0].settings == {"read_timeout_ms": 2000}
    save_rig(rig, path)
    assert "reconnect_timeout_s" not in path.read_text()
    assert load_rig(path) == rig
    with pytest.warns(RigWarning, match=r"^<rig>: cameras\[0\]\.settings\.reconnect_timeout_s"):
        kept = rig.with_settings("cam0", {"reconnect_timeout_s": 2.0})  # an older state db
    assert kept.cameras[0].settings == {"read_timeout_ms": 2000}


def test_a_key_added_to_a_file_without_plain_keys_goes_before_its_tables(tmp_path):
    path = write(tmp_path, '# top\n[[cameras]]\nsource = "synthetic"\n')
    rig = replace(load_rig(path), name="named")
    save_rig(rig, path)
    assert path.read_text().startswith('# top\nname = "named"\n[[cameras]]\n')
    assert load_rig(path) == rig


@pytest.mark.parametrize(("text", "expected"), [
    ("[device]\ndisk_warn_below_gb = 2\ndisk_stop_below_gb = 3\n",
     "3: device.disk_stop_below_gb: must not be above disk_warn_below_gb"),
    ("[supervisor]\nreconnect_restart_after_s = 5\n",
     "2: supervisor.reconnect_restart_after_s: must not be below reconnect_crash_after_s"),
    ("[supervisor]\nbackoff_initial_s = -1\n",
     "2: supervisor.backoff_initial_s: must be a number >= 0, got -1"),
])
def test_limits_between_options_are_checked(tmp_path, text, expected):
    path, message = load_error(tmp_path, text + '\n[[cameras]]\nsource = "synthetic"\n')
    assert message == f"{path}:{expected}"
    assert load_rig(write(tmp_path, '[supervisor]\nbackoff_initial_s = 0\n'
                                    '[[cameras]]\nsource = "synthetic"\n')
                    ).supervisor.backoff_initial_s == 0.0


@pytest.mark.parametrize(("source", "setting", "expected"), [
    ('"rtsp://cam.local/s1"', "warp = 9", "5: cameras[0].settings: unknown setting 'warp'"),
    ('"rtsp://cam.local/s1"', 'rtsp_transport = "pigeon"',
     "6: cameras[0].settings.rtsp_transport: must be one of tcp, udp"),
    ('"synthetic"', 'pattern = "plaid"', "6: cameras[0].settings.pattern: must be one of"),
    ("7", 'fourcc = "H264"', "6: cameras[0].settings.fourcc: H264 is not offered"),
    ("7", "Zoom = 2", "5: cameras[0].settings: unknown setting 'Zoom'"),
])
def test_every_cameras_settings_are_checked_by_its_source_at_load(tmp_path, source, setting,
                                                                   expected):
    """A wrong setting of a network or USB camera used to pass the load and fail later as
    a restart loop with no file or line. (A USB camera's controls are its driver's: their
    names and limits are checked when it opens, where one it refuses is logged and
    skipped; at load only their shape is.)"""
    text = f'name = "r"\n[[cameras]]\nsource = {source}\n\n[cameras.settings]\n{setting}\n'
    path, message = load_error(tmp_path, text)
    assert message.startswith(f"{path}:{expected}"), message


@pytest.mark.parametrize("url", ["rtsp://user:secret@", "http://:8080/x", "rtsp:///stream",
                                 "http://cam:port/x"])
def test_a_network_url_without_a_host_or_with_a_bad_port_is_refused(tmp_path, url):
    path, message = load_error(tmp_path, f'name = "r"\n[[cameras]]\nsource = "{url}"\n')
    assert message.startswith(f"{path}:3: cameras[0].source: network camera URL"), message
    assert "secret" not in message
