"""Stand-in network cameras on 127.0.0.1 that fail the way real ones do, or speak a
scheme of their own: GStreamer's RTSP server (a password, audio only, TLS), a small
Python HTTP(S) server (401, a web page, MPEG-TS files, live MJPEG), ffmpeg sending MPEG-TS
over UDP (unicast, multicast) and serving RTMP. CameraServers.stop() ends every one of
them, even after a failure.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from tests.conftest import free_port, tool_or_skip
from tests.stamped_servers import SYSTEM_PYTHON, rtsp_server_or_skip
from tests.waiting import wait_listening

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
RTSP_SERVER = TESTS / "rtsp_camera_server.py"
H264_TS = 0x1B  # MPEG-TS stream types: H.264, and AVS2 (which FFmpeg cannot decode)
AVS2_TS = 0xD2
LIVE_SOURCE = ["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"]
H264_ARGS = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
             "-threads", "1"]

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path, name: str = "camera") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, as cameras make them: (cert, key)."""
    openssl = tool_or_skip("openssl")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def signed_by_authority(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and a certificate for 127.0.0.1 it signed: (authority's
    cert, cert, key)."""
    openssl = tool_or_skip("openssl")
    authority, authority_key = self_signed(folder, "authority")
    request, key, cert = folder / "camera.csr", folder / "camera.key", folder / "camera.pem"
    extensions = folder / "camera.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(request)],
                   check=True, capture_output=True, timeout=60)
    subprocess.run([openssl, "x509", "-req", "-in", str(request), "-CA", str(authority),
                    "-CAkey", str(authority_key), "-CAcreateserial", "-days", "2",
                    "-extfile", str(extensions), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return authority, cert, key


def mpegts(video: bool = True, audio: bool = False, seconds: float = 1.0) -> bytes:
    """A short MPEG-TS: H.264 video (320x240, 15 fps) and/or MP2 audio, made with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as container:
        streams: list[Any] = []
        if video:
            picture = container.add_stream("libx264", rate=15)
            picture.width, picture.height, picture.pix_fmt = 320, 240, "yuv420p"
            streams.append(picture)
        if audio:
            streams.append(container.add_stream("mp2", rate=48000, layout="mono"))
        for i in range(round(seconds * 15)):
            if video:
                frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i * 8 % 256, np.uint8),
                                                   format="bgr24")
                frame.pts, frame.time_base = i, Fraction(1, 15)
                container.mux(streams[0].encode(frame))
        for i in range(round(seconds * 48000 / 1152) if audio else 0):  # MP2's frames
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16",
                                               layout="mono")
            sound.sample_rate, sound.pts = 48000, i * 1152
            container.mux(streams[-1].encode(sound))
        for stream in streams:
            container.mux(stream.encode(None))
    return buffer.getvalue()


def retag_video(data: bytes, stream_type: int) -> bytes:
    """An MPEG-TS whose H.264 stream is declared as another codec (its PMT rewritten, its
    CRC made good): a stream of a codec FFmpeg knows but cannot decode."""
    out = bytearray(data)
    pmt_pid = None
    for start in range(0, len(out) - 187, 188):
        pid = ((out[start + 1] & 0x1F) << 8) | out[start + 2]
        if not out[start + 1] & 0x40:  # no section starts in this packet
            continue
        section = start + 5 + out[start + 4]
        if pid == 0 and pmt_pid is None:  # the PAT: its first program's PMT
            pmt_pid = ((out[section + 10] & 0x1F) << 8) | out[section + 11]
        elif pid == pmt_pid:
            end = section + 3 + (((out[section + 1] & 0x0F) << 8) | out[section + 2]) - 4
            entry = section + 12 + (((out[section + 10] & 0x0F) << 8) | out[section + 11])
            while entry < end:
                if out[entry] == H264_TS:
                    out[entry] = stream_type
                entry += 5 + (((out[entry + 3] & 0x0F) << 8) | out[entry + 4])
            out[end:end + 4] = _crc32_mpeg(bytes(out[section:end])).to_bytes(4, "big")
    return bytes(out)


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def answer(status: int, body: bytes = b"", content_type: str = "text/plain",
           headers: dict[str, str] | None = None) -> Route:
    """A route that answers once with `status` and `body`."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Type": content_type, **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpCamera

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            answer(404)(self)
            return
        with contextlib.suppress(OSError):  # the client went
            route(self)

    def log_message(self, *args: Any) -> None:
        pass


class _HttpCamera(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes


class CameraServers:
    """Starts stand-in cameras on free ports; stop() ends them all."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen] = []
        self._logs: list[tuple[str, Any]] = []
        self._http: list[tuple[_HttpCamera, threading.Thread]] = []
        self._stopping: list[threading.Event] = []  # of the live MJPEG routes

    # --- RTSP (GStreamer) ---------------------------------------------------------------

    def rtsp(self, media: str = "video", user: str | None = None, password: str = "",
             tls: tuple[Path, Path] | None = None) -> str:
        """rtsp://127.0.0.1:PORT/cam (rtsps:// with tls=(cert, key)): H.264 320x240 at 15
        fps, or an audio-only stream; with a user, basic authentication."""
        rtsp_server_or_skip()
        port = free_port()
        command = [SYSTEM_PYTHON, str(RTSP_SERVER), str(port), "--media", media]
        if user is not None:
            command += ["--user", user, "--password", password]
        if tls is not None:
            command += ["--tls", str(tls[0]), str(tls[1])]
        server = self._start(command, stdin=subprocess.PIPE)  # ends if we die unannounced
        wait_listening(server, port, "the RTSP server")
        return f"{'rtsps' if tls else 'rtsp'}://127.0.0.1:{port}/cam"

    # --- HTTP(S) (Python) ---------------------------------------------------------------

    def http(self, routes: dict[str, Route], tls: tuple[Path, Path] | None = None) -> str:
        """http(s)://127.0.0.1:PORT, answering each path of `routes` by its route."""
        server = _HttpCamera(routes)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                  name="camera-http", daemon=True)
        thread.start()
        self._http.append((server, thread))
        return f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"

    def mjpeg(self, fps: int = 15) -> Route:
        """A route serving live MJPEG (multipart) at fps until the client or server goes."""
        stopping = threading.Event()
        self._stopping.append(stopping)

        def route(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            handler.end_headers()
            frame = np.zeros((240, 320, 3), np.uint8)
            number = 0
            while not stopping.wait(1 / fps):
                frame[:] = (number * 8) % 256
                cv2.putText(frame, str(number), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2,
                            (255, 255, 255), 3)
                jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
                handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                    + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                handler.wfile.flush()
                number += 1

        return route

    # --- ffmpeg: MPEG-TS over UDP, RTMP ---------------------------------------------------

    def udp(self, group: str | None = None) -> str:
        """udp://ADDRESS:PORT receiving H.264 in MPEG-TS that ffmpeg sends there: to
        127.0.0.1, or to the multicast `group` through the loopback interface."""
        ffmpeg = tool_or_skip("ffmpeg")
        port = free_udp_port()
        if group is None:
            target, url = f"udp://127.0.0.1:{port}?pkt_size=1316", f"udp://127.0.0.1:{port}"
        else:
            target = f"udp://{group}:{port}?pkt_size=1316&localaddr=127.0.0.1&ttl=0"
            url = f"udp://{group}:{port}?localaddr=127.0.0.1"
        self._start([ffmpeg, "-hide_banner", "-loglevel", "error", *LIVE_SOURCE, *H264_ARGS,
                     "-f", "mpegts", target])
        return url

    def rtmp(self) -> str:
        """rtmp://127.0.0.1:PORT/live/cam: ffmpeg serving H.264 in FLV to one client."""
        ffmpeg = tool_or_skip("ffmpeg")
        port = free_port()
        url = f"rtmp://127.0.0.1:{port}/live/cam"
        server = self._start([ffmpeg, "-hide_banner", "-loglevel", "error", *LIVE_SOURCE,
                              *H264_ARGS, "-f", "flv", "-listen", "1", url])
        wait_listening(server, port, "ffmpeg's RTMP server")
        return url

    # --- the end -----------------------------------------------------------------------

    def log(self) -> str:
        """What the server processes printed on stderr so far: a failing test shows it."""
        parts = []
        for what, file in self._logs:
            file.seek(0)
            parts.append(f"--- {what} stderr ---\n{file.read().decode(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def _start(self, command: list[str], stdin: Any = subprocess.DEVNULL) -> subprocess.Popen:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115  (kept for log(), closed by stop())
        self._logs.append((Path(command[1]).name if command[0] == SYSTEM_PYTHON
                           else Path(command[0]).name, stderr))
        process = subprocess.Popen(command, cwd=ROOT, stdin=stdin, stdout=subprocess.DEVNULL,
                                   stderr=stderr, env={**os.environ, "GST_DEBUG": "1"})
        self._processes.append(process)
        return process

    def stop(self) -> None:
        for event in self._stopping:
            event.set()
        for server, thread in self._http:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._http.clear()
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdin is not None:
                process.stdin.close()
        self._processes.clear()
        for _, file in self._logs:
            file.close()
        self._logs.clear()
