"""Why a network camera's stream would not open or broke, in a user's words.

FFmpeg reports a failure as an error code (PyAV raises it as an exception carrying
FFmpeg's last error line) and says more in its log; a user needs neither code nor log,
but what to fix: the password, the address, the port, the certificate, the camera's
stream settings. explain() turns the one into the other; the open's log lines
(ffmpeg_log.opening) add what only they tell: the media an RTSP camera offers, the codec
FFmpeg has no decoder for.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import av.error

from engine.sources.ffmpeg_log import FFmpegLine

UNAUTHORIZED = "the camera refused the user name or password (401 Unauthorized)"
NO_VIDEO = "the stream holds no video"
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935,
                 "rtmps": 443}
UNREACHABLE = {errno.EHOSTUNREACH: "no route to host", errno.ENETUNREACH: "network unreachable",
               errno.EHOSTDOWN: "host is down"}
# FFmpeg's find_stream_info about a stream without a decoder: "(Video: avs2 ([210]..."
_VIDEO_CODEC = re.compile(r"\(Video: ([\w-]+)")
_MEDIA = re.compile(r"^m=(\w+) ", re.MULTILINE)
_RTPMAP = re.compile(r"^a=rtpmap:\d+ ([^/\s]+)", re.MULTILINE)
_RESOLVE = re.compile(r"Failed to resolve hostname (\S+?): (.+)")


def explain(error: BaseException, url: str = "", lines: Sequence[FFmpegLine] = ()) -> str:
    """What went wrong, from FFmpeg's error, the stream's URL (never shown: it may hold a
    password) and the log lines of the attempt."""
    last = _last_error_line(error)
    scheme = urlsplit(url).scheme.lower() if url else ""
    if isinstance(error, av.error.HTTPUnauthorizedError):
        if url and urlsplit(url).username is None:
            return ("the camera asks for a user name and password (401 Unauthorized): put "
                    f"them in the URL, like {scheme or 'rtsp'}://user:password@host/...")
        return UNAUTHORIZED
    if isinstance(error, av.error.HTTPForbiddenError):
        return "the camera refused access (403 Forbidden)"
    if isinstance(error, av.error.HTTPNotFoundError):
        return "no such stream on the camera (404 Not Found): check the URL's path"
    media = offered_media(lines)
    if media and "video" not in media:
        return f"{NO_VIDEO} (the camera offers {' and '.join(media)} only)"
    if isinstance(error, av.error.ConnectionRefusedError):
        return f"connection refused: nothing listens at {_address(url)}" if url \
            else "connection refused"
    if isinstance(error, av.error.ExitError):
        return "no answer in time"
    if "certificate" in last.lower():
        return (f"the camera's TLS certificate did not verify ({last}: self-signed, expired "
                "or made out to another name?); set tls_verify to false to accept it")
    if _component(error) == "tls" and last:
        return f"the TLS connection failed ({last})"
    resolved = _RESOLVE.search(last)
    if resolved:
        return f"cannot find the camera's host name {resolved[1]!r} ({resolved[2]})"
    if isinstance(error, OSError) and error.errno in UNREACHABLE:
        return f"the camera's host cannot be reached ({UNREACHABLE[error.errno]})"
    if isinstance(error, OSError) and error.errno == errno.ETIMEDOUT:
        return "the camera did not answer (connection timed out)"
    if isinstance(error, av.error.HTTPClientError | av.error.HTTPServerError):
        said = f": {last}" if last else ""
        kind = "refused the request" if isinstance(error, av.error.HTTPClientError) \
            else "failed to serve the stream"
        return f"the camera {kind} ({error.strerror}{said})"
    if isinstance(error, av.error.InvalidDataError):
        if scheme.startswith("rtsp"):
            return f"the server did not answer as an RTSP camera ({error.strerror})"
        return f"{NO_VIDEO} (FFmpeg finds no video format in it)"
    if isinstance(error, av.error.FFmpegError):
        return error.strerror or str(error)
    return str(error)


def unsupported_codec(lines: Sequence[FFmpegLine]) -> str:
    """A video stream FFmpeg has no decoder for, named by what the open's lines say."""
    name = ""
    for _level, _component, text in lines:
        found = _VIDEO_CODEC.search(text)
        if found:
            name = found[1]
    if name in ("", "none"):  # an RTSP camera's payload FFmpeg does not know: the SDP names it
        name = next((found[1] for text in _sdps(lines) for found in _video_rtpmaps(text)), "")
    return (f"unsupported codec {name} (FFmpeg cannot decode it)" if name
            else "unsupported codec (FFmpeg cannot decode the stream's video)")


def offered_media(lines: Sequence[FFmpegLine]) -> list[str]:
    """The media an RTSP camera's session description offers ("video", "audio", ...), in
    order, from the open's lines; [] when they hold none."""
    media: list[str] = []
    for text in _sdps(lines):
        media.extend(kind for kind in _MEDIA.findall(text) if kind not in media)
    return media


def _sdps(lines: Sequence[FFmpegLine]) -> list[str]:
    return [text.replace("\r", "") for _level, _component, text in lines
            if text.startswith("SDP:")]


def _video_rtpmaps(sdp: str) -> list[re.Match[str]]:
    """The rtpmap lines of the video sections of a session description."""
    sections = re.split(r"^(?=m=)", sdp, flags=re.MULTILINE)
    return [found for section in sections if section.startswith("m=video")
            for found in _RTPMAP.finditer(section)]


def _last_error_line(error: BaseException) -> str:
    """FFmpeg's error line that came with the error (PyAV keeps it), stripped."""
    log = getattr(error, "log", None)
    return log[2].strip() if log else ""


def _component(error: BaseException) -> str:
    log = getattr(error, "log", None)
    return str(log[1]) if log else ""


def _address(url: str) -> str:
    """host:port of a URL, the scheme's default port when it names none."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host
