"""Network cameras through PyAV (issue 16): a failure named in a user's words, FFmpeg's own
lines kept off the terminal, every stream scheme FFmpeg reads for cameras, TLS with a
camera's self-signed certificate.

Each case runs against a real server on 127.0.0.1 (tests/camera_servers.py): GStreamer's
RTSP server with a password, audio only or TLS; a Python HTTP(S) server; ffmpeg sending
MPEG-TS over UDP or serving RTMP. Closed ports are real closed ports.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av.error
import numpy as np
import pytest

from engine.sources import SourceError, create_source, parse_source
from engine.sources.ffmpeg_log import FFMPEG_LOG_ENV
from engine.sources.stream_problems import UNAUTHORIZED, explain, unsupported_codec
from engine.specs import NETWORK_SCHEMES
from engine.wire.paths import STDERR_IS_LOG_ENV
from tests.camera_servers import (
    AVS2_TS,
    CameraServers,
    answer,
    mpegts,
    retag_video,
    self_signed,
    signed_by_authority,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"open_timeout_ms": 4000, "read_timeout_ms": 4000}


@pytest.fixture
def servers() -> Iterator[CameraServers]:
    started = CameraServers()
    try:
        yield started
    finally:
        started.stop()


def open_failure(url: str, **settings: object) -> str:
    """Why opening the network camera at url fails (it must)."""
    source = create_source(url, 0, 320, 240, 15, {**QUICK, **settings})
    try:
        with pytest.raises(SourceError) as error:
            source.open()
    finally:
        source.close()
    return str(error.value)


def frames_of(url: str, count: int = 5, **settings: object) -> dict[str, object]:
    """Open the camera, read `count` frames (a frame's picture where the source hands out
    pictures), close it; return its settings and capture clock."""
    source = create_source(url, 0, 320, 240, 15, {**QUICK, **settings})
    source.open()
    try:
        values = source.settings()
        out = np.zeros((values["height"], values["width"], 3), np.uint8)
        for frame_number in range(count):
            assert source.grab()
            if not getattr(source, "copies", False):  # a copied stream hands out packets
                source.retrieve(out, frame_number)
        return {**values, "capture_clock": source.capture_clock, "mean": float(out.mean())}
    finally:
        source.close()


# -- failures named in a user's words -------------------------------------------------


@pytest.mark.timeout(60)
def test_an_rtsp_camera_that_refuses_the_password_says_so(servers):
    url = servers.rtsp(user="admin", password="right")
    wrong = url.replace("rtsp://", "rtsp://admin:wrong@")
    message = open_failure(wrong)
    assert message == (f"cannot open network camera {parse_source(wrong).display}: "
                       f"{UNAUTHORIZED}")
    assert "wrong" not in message
    assert "asks for a user name and password (401 Unauthorized)" in open_failure(url)
    right = frames_of(url.replace("rtsp://", "rtsp://admin:right@"), 2)
    assert (right["width"], right["height"]) == (320, 240)


@pytest.mark.timeout(30)
def test_an_http_camera_that_refuses_the_password_says_so(servers):
    refuse = answer(401, headers={"WWW-Authenticate": 'Basic realm="camera"'})
    base = servers.http({"/video.mjpg": refuse})
    wrong = base.replace("http://", "http://admin:wrong@") + "/video.mjpg"
    assert open_failure(wrong).endswith(f": {UNAUTHORIZED}")
    assert "asks for a user name and password (401 Unauthorized): put them in the URL, " \
           "like http://user:password@host/..." in open_failure(base + "/video.mjpg")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scheme", ["http", "https", "rtsp", "rtsps", "rtmp"])
def test_a_closed_port_is_named(scheme):
    port = free_port()
    url = f"{scheme}://127.0.0.1:{port}/cam"
    started = time.monotonic()
    message = open_failure(url)
    assert time.monotonic() - started < 3
    assert message == (f"cannot open network camera {url}: connection refused: nothing "
                       f"listens at 127.0.0.1:{port}")


@pytest.mark.timeout(30)
def test_a_udp_camera_that_sends_nothing_times_out():
    url = f"udp://127.0.0.1:{free_port()}"
    assert open_failure(url, open_timeout_ms=1500) == \
        f"cannot open network camera {url}: no stream within 1.5 s"


@pytest.mark.timeout(30)
def test_a_host_name_that_does_not_resolve_is_named():
    message = open_failure("rtsp://camera.invalid/stream")
    assert "cannot find the camera's host name 'camera.invalid'" in message


@pytest.mark.parametrize(("code", "expected"), [
    (errno.EHOSTUNREACH, "the camera's host cannot be reached (no route to host)"),
    (errno.ENETUNREACH, "the camera's host cannot be reached (network unreachable)"),
    (errno.ETIMEDOUT, "the camera did not answer (connection timed out)"),
])
def test_an_unreachable_host_is_named(code, expected):
    """No route to a host cannot be made on 127.0.0.1: FFmpeg's own errors stand in."""
    with pytest.raises(av.error.FFmpegError) as error:
        av.error.err_check(-code)
    assert explain(error.value, "rtsp://10.0.0.9/stream") == expected


@pytest.mark.timeout(60)
def test_an_rtsp_camera_without_video_says_so(servers):
    message = open_failure(servers.rtsp(media="audio"))
    assert message.endswith(": the stream holds no video (the camera offers audio only)")


@pytest.mark.timeout(30)
def test_an_http_stream_without_video_says_so(servers):
    page = b"<!doctype html><html><body><h1>Camera settings</h1></body></html>" * 40
    base = servers.http({"/index.html": answer(200, page, "text/html"),
                         "/audio.ts": answer(200, mpegts(video=False, audio=True),
                                             "video/mp2t")})
    assert open_failure(base + "/audio.ts").endswith(": the stream holds no video")
    assert open_failure(base + "/index.html").endswith(
        ": the stream holds no video (FFmpeg finds no video format in it)")


@pytest.mark.timeout(30)
def test_a_codec_ffmpeg_cannot_decode_is_named(servers):
    """AVS2 video in MPEG-TS: FFmpeg knows the codec but has no decoder for it."""
    base = servers.http({"/avs2.ts": answer(200, retag_video(mpegts(), AVS2_TS), "video/mp2t")})
    assert open_failure(base + "/avs2.ts").endswith(
        ": unsupported codec avs2 (FFmpeg cannot decode it)")


def test_an_rtsp_payload_ffmpeg_does_not_know_is_named_from_the_sdp():
    sdp = ("SDP:\nv=0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
           "m=video 0 RTP/AVP 96\r\na=rtpmap:96 JPEG2000/90000\r\n")
    lines = [(40, "rtsp", sdp), (24, "", "Could not find codec parameters for stream 0 "
                                        "(Video: none, none): unspecified size")]
    assert unsupported_codec(lines) == "unsupported codec JPEG2000 (FFmpeg cannot decode it)"


# -- FFmpeg's own lines: the engine's log, never the terminal ---------------------------


def record(url: str, folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "record", "--camera", url, "--seconds", "2",
         "--output", str(folder)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**_environment(), **env})


def _environment() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if name != FFMPEG_LOG_ENV}


@pytest.mark.timeout(120)
def test_record_names_the_failure_and_prints_nothing_of_ffmpeg(servers, tmp_path):
    """Every line the CLI prints is its own: the camera's message, no "[rtsp @ 0x...]"
    and no "method DESCRIBE failed"."""
    rtsp = servers.rtsp(user="admin", password="right").replace("rtsp://", "rtsp://admin:x@")
    closed = f"rtsp://127.0.0.1:{free_port()}/cam"
    for url, reason in ((rtsp, UNAUTHORIZED), (closed, "connection refused: nothing listens")):
        result = record(url, tmp_path)
        assert result.returncode == 1, result.stderr
        shown = parse_source(url).display
        assert f"cam0: cannot open network camera {shown}: {reason}" in result.stderr
        for line in result.stderr.splitlines():
            assert line.startswith(("error: ", "  cam0: ")), result.stderr
        assert "DESCRIBE" not in result.stderr and "@ 0x" not in result.stderr


@pytest.mark.timeout(60)
def test_ffmpeg_lines_are_shown_when_asked_for(servers, tmp_path):
    url = servers.rtsp(user="admin", password="right").replace("rtsp://", "rtsp://admin:x@")
    result = record(url, tmp_path, **{FFMPEG_LOG_ENV: "error"})
    assert result.returncode == 1
    assert "engine.ffmpeg: [rtsp] method DESCRIBE failed: 401 (Unauthorized)" in result.stderr


OPEN_ONE = """
import sys
from engine.sources import SourceError, create_source
source = create_source(sys.argv[1], 0, 320, 240, 15)
try:
    source.open()
except SourceError as error:
    print(error)
"""


@pytest.mark.timeout(60)
def test_ffmpeg_lines_go_to_the_log_of_an_engine_a_client_launched(servers, tmp_path):
    """A launched engine's output, its camera processes' too, goes to its log
    (engine/service/engine_log.py), and it tells them so in their environment: FFmpeg's
    lines go to such a process's stderr; any other's (a terminal, a pipe) gets none."""
    url = servers.rtsp(user="admin", password="right").replace("rtsp://", "rtsp://admin:x@")
    log = tmp_path / "engine-output"
    with log.open("ab") as stderr:
        logged = subprocess.run([sys.executable, "-c", OPEN_ONE, url], stdout=subprocess.PIPE,
                                stderr=stderr, text=True, timeout=30, cwd=ROOT,
                                env={**_environment(), STDERR_IS_LOG_ENV: "1"})
    piped = subprocess.run([sys.executable, "-c", OPEN_ONE, url], capture_output=True,
                           text=True, timeout=30, cwd=ROOT, env=_environment())
    for result in (logged, piped):
        assert UNAUTHORIZED in result.stdout
    assert "engine.ffmpeg: [rtsp] method DESCRIBE failed: 401 (Unauthorized)" in log.read_text()
    assert piped.stderr == ""


# -- every scheme FFmpeg reads for cameras ----------------------------------------------


def test_every_scheme_the_engine_takes_is_one_pyav_ffmpeg_reads():
    """srt:// is not among them: PyAV's FFmpeg is built without libsrt."""
    for scheme in (*NETWORK_SCHEMES, "srt"):
        try:
            av.open(f"{scheme}://127.0.0.1:{free_port()}/x", timeout=(0.3, 0.3)).close()
        except av.error.ProtocolNotFoundError:
            assert scheme == "srt", f"PyAV's FFmpeg has no {scheme} protocol"
        except (av.error.FFmpegError, OSError):
            assert scheme != "srt", "PyAV's FFmpeg reads srt:// now: add it to NETWORK_SCHEMES"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("group", [None, "239.255.42.42"], ids=["unicast", "multicast"])
def test_a_udp_camera_gives_frames(servers, group):
    """A receiver joins a UDP stream mid-flight: it waits for the stream's next keyframe
    and probes it, which on a loaded 2-core machine took over the 4 s of the other
    tests here (the sender starts with it, too)."""
    got = frames_of(servers.udp(group), open_timeout_ms=10_000)
    assert (got["width"], got["height"], got["fps"]) == (320, 240, 15.0)
    assert got["capture_clock"] == "arrival_fit"


@pytest.mark.timeout(60)
def test_an_rtmp_camera_gives_frames_within_the_default_open_timeout(servers):
    """FLV declares no streams up front: FFmpeg read 5 s for streams it might not have
    seen, the default open timeout; now it reads 1 s."""
    got = frames_of(servers.rtmp(), open_timeout_ms=5000)
    assert (got["width"], got["height"], got["fps"]) == (320, 240, 15.0)
    assert got["capture_clock"] == "arrival_fit"


# -- TLS: a camera's certificate ---------------------------------------------------------


def test_network_cameras_check_certificates_unless_told_not_to():
    source = create_source("https://127.0.0.1:1/cam", 0, 320, 240, 15)
    spec = {p.name: p for p in source.properties()}["tls_verify"]
    assert (spec.kind, spec.value, spec.default) == ("bool", True, True)
    assert source.apply({"tls_verify": "false"})["tls_verify"] is False


@pytest.mark.timeout(60)
def test_an_https_camera_with_a_self_signed_certificate(servers, tmp_path):
    cert = self_signed(tmp_path)
    url = servers.http({"/video.mjpg": servers.mjpeg()}, tls=cert) + "/video.mjpg"
    message = open_failure(url)
    assert "the camera's TLS certificate did not verify" in message
    assert message.endswith("set tls_verify to false to accept it")
    got = frames_of(url, tls_verify=False)
    assert (got["width"], got["height"]) == (320, 240)
    assert got["mean"] > 10


@pytest.mark.timeout(60)
def test_an_https_camera_whose_certificate_a_trusted_authority_signed(servers, tmp_path,
                                                                      monkeypatch):
    """Verified against the system's authorities (SSL_CERT_FILE names them here)."""
    authority, cert, key = signed_by_authority(tmp_path)
    url = servers.http({"/video.mjpg": servers.mjpeg()}, tls=(cert, key)) + "/video.mjpg"
    assert "did not verify" in open_failure(url)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))
    got = frames_of(url, 2)
    assert (got["width"], got["height"]) == (320, 240)


@pytest.mark.timeout(60)
def test_an_rtsps_camera_with_a_self_signed_certificate(servers, tmp_path):
    url = servers.rtsp(tls=self_signed(tmp_path))
    assert url.startswith("rtsps://")
    message = open_failure(url)
    assert "the camera's TLS certificate did not verify" in message
    got = frames_of(url, tls_verify=False)
    assert (got["width"], got["height"]) == (320, 240)
    assert got["capture_clock"] in ("rtcp", "rtp")
