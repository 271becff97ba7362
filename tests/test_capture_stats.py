"""Live rates and spreads are computed by each observer over its own window; asking the
group changes nothing (no processes needed: a fake group stands in)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.capture.stats import LiveStats, RateMeter, SpreadWindow, spread_summary


class FakeGroup:
    """Counts and a clock the test moves; spreads of 1 ms per completed frame set."""

    def __init__(self) -> None:
        self.now = 100.0
        self.frames = 0
        self.snapshots = 0

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        return {"time": self.now, "paused": False, "recording": None,
                "cameras": [{"id": "cam0", "frames": self.frames, "dropped": 0}]}

    def spreads_since(self, start: int) -> tuple[np.ndarray, int]:
        return np.ones(max(0, self.frames - start)), self.frames


def test_rates_are_measured_over_at_least_the_window():
    group, meter = FakeGroup(), RateMeter(window_s=1.0)
    assert meter.rates(group.snapshot()) == {"cam0": 0.0}  # the first look sets the mark
    group.now, group.frames = 100.5, 15
    assert meter.rates(group.snapshot()) == {"cam0": 30.0}  # not a full window: mark kept
    group.now, group.frames = 101.0, 30
    assert meter.rates(group.snapshot()) == {"cam0": 30.0}  # a full window: the mark moves
    group.now, group.frames = 102.0, 90
    assert meter.rates(group.snapshot()) == {"cam0": 60.0}


def test_two_observers_do_not_disturb_each_others_windows():
    group = FakeGroup()
    first, second = LiveStats(group), LiveStats(group)
    first.sample()
    second.sample()
    group.now, group.frames = 101.0, 30
    assert first.sample()["spread"]["frame_sets"] == 30
    group.now, group.frames = 102.0, 60
    assert first.sample()["spread"]["frame_sets"] == 30
    sample = second.sample()  # its window still starts where it last looked
    assert sample["spread"]["frame_sets"] == 60
    assert sample["cameras"] == [{"id": "cam0", "frames": 60, "dropped": 0, "fps": 30.0}]


def test_a_spread_window_only_reports_new_frame_sets():
    group = FakeGroup()
    window = SpreadWindow(group)
    group.frames = 5
    assert len(window.new_spreads_ms()) == 5
    assert len(window.new_spreads_ms()) == 0
    group.frames = 8
    assert window.summary() == {"frame_sets": 3, "p50_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0}
    assert spread_summary(np.zeros(0))["frame_sets"] == 0
