"""A stand-in RTSP camera: GStreamer's RTSP server, H.264, every frame clock-stamped.

Run by the SYSTEM Python (Debian's python3-gi; the venv has no gi) from the repository
root:  /usr/bin/python3 engine/bench/rtsp_stamped_server.py PORT PATH WIDTH HEIGHT FPS [LATE_S]
It serves rtsp://127.0.0.1:PORT/PATH. With LATE_S, a PLAY request that comes while a
client already plays is answered LATE_S seconds late: a camera that opens later than the
others, for certain (which of two cameras opening together gets the first keyframe is
otherwise a race). Frames are made and stamped on a fixed schedule
and pushed into appsrc, which keeps at most two and drops the oldest: like a real
camera, the source never waits for its readers. The media is shared, so every client
receives the very same frames. It exits on SIGTERM or when its stdin closes (the test
that started it is gone). `--check` exits 1 naming what is missing.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

ELEMENTS = ("appsrc", "videoconvert", "x264enc", "rtph264pay")
PIPELINE = (
    "( appsrc name=src is-live=true format=time do-timestamp=true max-buffers=2"
    " leaky-type=downstream caps=video/x-raw,format=BGR,width={width},height={height},"
    "framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420"
    " ! x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max={fps} bitrate=3000"
    " ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


def missing() -> str | None:
    """What this machine lacks to serve, or None."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401
    except (ImportError, ValueError) as exc:
        return f"GStreamer's RTSP server for python3 ({exc})"
    try:
        import numpy  # noqa: F401
    except ImportError:
        return "python3-numpy"
    Gst.init(None)
    absent = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    return f"GStreamer elements {absent}" if absent else None


def serve(port: int, path: str, width: int, height: int, fps: int, late_s: float) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    from engine.sources.stamped_frames import StampedFrames, run_paced

    Gst.init(None)
    loop = GLib.MainLoop()
    frames = StampedFrames(width, height)
    # The appsrc of every media that clients use: normally the one shared media, but a
    # media being torn down while a new client arrives would otherwise starve the new one.
    sources: dict[int, Gst.Element] = {}
    results: dict[int, Gst.FlowReturn] = {}  # each media's last push-buffer result

    def push(_due_ns: int) -> None:
        """One frame into every media, stamped when made: the appsrc times its buffers
        (and so the RTP times) at the push. A failure is told on stderr, never ends the
        feed (a stand-in that stops sending for good looks like a client bug)."""
        frame = frames.make().tobytes()
        for key, source in list(sources.items()):
            result = source.emit("push-buffer", Gst.Buffer.new_wrapped(frame))
            if results.get(key) != result:  # told once per change, not per frame
                results[key] = result
                print(f"stand-in: media {key:x} frame {frames.counter - 1}: push-buffer "
                      f"{result.value_nick}", file=sys.stderr, flush=True)

    def configured(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
        key = id(media)
        sources[key] = media.get_element().get_child_by_name("src")
        print(f"stand-in: media {key:x} configured ({len(sources)} in use)", file=sys.stderr,
              flush=True)

        def unprepared(*_: object) -> None:
            sources.pop(key, None)
            print(f"stand-in: media {key:x} unprepared", file=sys.stderr, flush=True)

        media.connect("unprepared", unprepared)

    playing: list[object] = []  # clients whose PLAY was answered

    def before_play(_client: object, _context: object) -> GstRtsp.RTSPStatusCode:
        if playing and late_s:
            time.sleep(late_s)  # this client's thread only: the others' media flows on
        return GstRtsp.RTSPStatusCode.OK

    def connected(_server: object, client: GstRtspServer.RTSPClient) -> None:
        client.connect("pre-play-request", before_play)
        client.connect("play-request", lambda *_: playing.append(client))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(width=width, height=height, fps=fps))
    factory.set_shared(True)
    factory.connect("media-configure", configured)
    server = GstRtspServer.RTSPServer()
    # Each client on a thread (and main context) of its own: a late PLAY then stalls only
    # its own client. On the server's one main loop it stalled every client's sending too,
    # which can leave a shared media that never flows (seen twice in CI).
    server.get_thread_pool().set_max_threads(8)
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    server.get_mount_points().add_factory(f"/{path}", factory)
    server.connect("client-connected", connected)
    server.attach(None)

    stop = threading.Event()
    producer = threading.Thread(target=run_paced, args=(fps, push, stop), daemon=True)
    producer.start()
    threading.Thread(target=lambda: (sys.stdin.read(), GLib.idle_add(loop.quit)),
                     daemon=True).start()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()
    stop.set()
    producer.join(timeout=2)


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        problem = missing()
        print(problem or "ok")
        return 1 if problem else 0
    port, path, width, height, fps, *late = sys.argv[1:]
    serve(int(port), path, int(width), int(height), int(fps), float(late[0]) if late else 0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
