"""A stand-in RTSP camera for the tests of network camera errors: GStreamer's RTSP server
with what a real camera may ask or send, each on request:

    /usr/bin/python3 tests/rtsp_camera_server.py PORT [--media video|audio]
        [--user NAME --password WORD] [--tls CERT_PEM KEY_PEM]

It serves rtsp://127.0.0.1:PORT/cam (rtsps:// with --tls): H.264 from videotestsrc, or
with --media audio an audio-only stream (PCMA). --user/--password ask for HTTP basic
authentication (a wrong pair is answered 401 Unauthorized). Run by the SYSTEM Python
(Debian's python3-gi; the venv has no gi) from the repository root. It ends on SIGTERM or
when its stdin closes (the test that started it is gone).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

MEDIA = {
    "video": ("( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1"
              " ! x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max=15"
              " ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96"
              " config-interval=-1 )"),
    "audio": ("( audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1"
              " ! alawenc ! rtppcmapay name=pay0 pt=8 )"),
}
ROLE = "camera-user"


def serve(args: argparse.Namespace) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import Gio, GLib, Gst, GstRtspServer

    Gst.init(None)
    loop = GLib.MainLoop()
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(MEDIA[args.media])
    factory.set_shared(True)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    if args.user is not None or args.tls:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        if args.user is not None:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        else:
            auth.set_default_token(token)  # anyone: TLS only
        if args.tls:
            certificate = Gio.TlsCertificate.new_from_files(*args.tls)
            auth.set_tls_certificate(certificate)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role(ROLE)
        permissions.add_permission_for_role(ROLE, "media.factory.access", True)
        permissions.add_permission_for_role(ROLE, "media.factory.construct", True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    threading.Thread(target=lambda: (sys.stdin.read(), GLib.idle_add(loop.quit)),
                     daemon=True).start()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--media", choices=sorted(MEDIA), default="video")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    parser.add_argument("--tls", nargs=2, metavar=("CERT_PEM", "KEY_PEM"))
    serve(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
