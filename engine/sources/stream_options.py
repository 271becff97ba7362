"""The options a network camera's stream is opened with, by URL scheme, for FFmpeg.

- rtsp(s): RTP over the RTSP connection unless told otherwise, and video only (an audio
  track would be set up and sent for nothing).
- https, rtsps, rtmps: the camera's certificate is checked (tls_verify, on by default)
  against the system's certificate authorities. FFmpeg's TLS (GnuTLS in PyAV's wheel)
  looks for them where the wheel was built (/etc/pki/tls/cert.pem), which Debian does
  not have, so the bundle Python's ssl knows is handed over as ca_file. tls_verify off
  accepts any certificate: a camera's self-signed one.
- rtmp(s): FLV announces no streams up front, so FFmpeg would read 5 s (its whole
  analyzeduration) for any it might not have seen yet, the default open timeout; 1 s
  shows a camera's video and audio.
- udp (MPEG-TS, unicast or multicast): a burst that overruns FFmpeg's receive buffer
  loses packets instead of failing the stream.
"""

from __future__ import annotations

import os
import ssl
from typing import Any
from urllib.parse import urlsplit

TLS_SCHEMES = ("https", "rtsps", "rtmps")
RTMP_ANALYZE_US = 1_000_000
# Where distributions keep their bundle of certificate authorities, should Python's ssl
# name none that exists.
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
              "/etc/ssl/cert.pem", "/etc/pki/tls/cert.pem")


def ffmpeg_options(url: str, settings: dict[str, Any]) -> dict[str, str]:
    """FFmpeg's options for opening `url` with a network camera's settings."""
    scheme = urlsplit(url).scheme.lower()
    options: dict[str, str] = {}
    if scheme in ("rtsp", "rtsps"):
        options.update(rtsp_transport=str(settings["rtsp_transport"]),
                       allowed_media_types="video")
    if scheme in TLS_SCHEMES:
        verify = bool(settings.get("tls_verify", True))
        options["tls_verify"] = "1" if verify else "0"
        ca_file = system_ca_file() if verify else None
        if ca_file:
            options["ca_file"] = ca_file
    if scheme in ("rtmp", "rtmps"):
        options["analyzeduration"] = str(RTMP_ANALYZE_US)
    if scheme == "udp":
        options["overrun_nonfatal"] = "1"
    return options


def system_ca_file() -> str | None:
    """The system's bundle of certificate authorities (PEM), None if none is found."""
    paths = ssl.get_default_verify_paths()
    candidates = (os.environ.get(paths.openssl_cafile_env), paths.cafile, paths.openssl_cafile,
                  *CA_BUNDLES)
    return next((path for path in candidates if path and os.path.isfile(path)), None)
