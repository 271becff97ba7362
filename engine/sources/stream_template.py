"""A camera stream's description as bytes, so another process can write its packets.

A stream recorded by copy is muxed by the writer process, which never sees the camera's
connection. FFmpeg needs the stream's codec parameters (codec, size, the H.264/H.265
parameter sets in its extradata) to write them, and PyAV builds an output stream only
from another stream: so the camera process writes a one-packet NUT file (which keeps the parameter
sets as the camera sent them, so the Matroska muxer converts its packets alike) of its
stream in memory, and the writer opens it and takes its stream as the template.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import av.container
import av.packet
import av.video.stream


def describe_stream(stream: av.video.stream.VideoStream, packet: av.packet.Packet) -> bytes:
    """The template of `stream`, carrying `packet` (a file cannot be read
    without one)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="nut") as container:
        copy = container.add_stream_from_template(stream)
        sample = av.Packet(bytes(packet))
        sample.pts = sample.dts = 0
        sample.time_base = Fraction(1, 1000)
        sample.stream = copy
        container.mux(sample)
    return buffer.getvalue()


def open_template(template: bytes) -> tuple[av.container.InputContainer,
                                            av.video.stream.VideoStream]:
    """The stream a template describes (keep the container open while using it)."""
    container = av.open(io.BytesIO(template), mode="r", format="nut")
    return container, container.streams.video[0]
