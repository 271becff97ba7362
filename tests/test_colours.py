"""Colours survive recording: a colour chart written by the engine's encoder decodes (by
FFmpeg, with its accurate converter) to the chart's colours within +-2 per channel, and
the file's colour metadata says how its YUV was made."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from engine.recording.encoder import VideoEncoder

# The 24 patches of the classic colour checker (sRGB, as its maker publishes them).
CHART_RGB = (
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177),
    (103, 189, 170), (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108),
    (157, 188, 64), (224, 163, 46), (56, 61, 150), (70, 148, 73), (175, 54, 60),
    (231, 199, 31), (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
    (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
)
WIDTH, HEIGHT = 1280, 720
COLUMNS, ROWS = 6, 4


def chart() -> np.ndarray:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    width, height = WIDTH // COLUMNS, HEIGHT // ROWS
    for patch, (red, green, blue) in enumerate(CHART_RGB):
        row, column = divmod(patch, COLUMNS)
        image[row * height:(row + 1) * height, column * width:(column + 1) * width] = (
            blue, green, red)
    return image


def decoded_by_ffmpeg(path: Path) -> np.ndarray:
    """The first frame as FFmpeg's own command turns it into BGR, with its accurate
    converter (its fast default is off by up to 3 on its own, whatever the file holds)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-vf",
         "scale=flags=accurate_rnd+full_chroma_int+full_chroma_inp", "-f", "rawvideo",
         "-pix_fmt", "bgr24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(HEIGHT, WIDTH, 3)


@pytest.mark.parametrize("codec", ["h264", "mjpeg", "ffv1"])
def test_a_colour_chart_keeps_its_colours(tmp_path, codec):
    image = chart()
    path = tmp_path / f"chart-{codec}.mkv"
    with VideoEncoder(path, codec, WIDTH, HEIGHT, 30.0) as video:
        for _ in range(5):
            video.write(image)
    decoded = decoded_by_ffmpeg(path)
    width, height = WIDTH // COLUMNS, HEIGHT // ROWS
    for patch in range(len(CHART_RGB)):
        row, column = divmod(patch, COLUMNS)
        y, x = row * height + height // 2, column * width + width // 2
        seen = decoded[y - 10:y + 10, x - 10:x + 10].reshape(-1, 3).mean(axis=0)
        assert np.abs(seen - image[y, x]).max() <= 2, (patch, seen, image[y, x])


def test_an_h264_file_says_its_colours_are_bt601_tv_range(tmp_path):
    path = tmp_path / "chart.mkv"
    with VideoEncoder(path, "h264", WIDTH, HEIGHT, 30.0) as video:
        video.write(chart())
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=pix_fmt,color_range,color_space,color_primaries,color_transfer",
         "-of", "default=nw=1", str(path)], capture_output=True, text=True, check=True).stdout
    assert sorted(probed.split()) == sorted([
        "pix_fmt=yuv420p", "color_range=tv", "color_space=smpte170m",
        "color_primaries=smpte170m", "color_transfer=smpte170m"])
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.color_range == 1  # MPEG/TV
