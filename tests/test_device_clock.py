"""A camera's own clock mapped onto the engine's, measured from when its frames arrived;
the trigger mode a rig or `record --trigger` gives its machine-vision cameras."""

from __future__ import annotations

import numpy as np
import pytest

from engine.recording.device_clock import MIN_FRAMES, fit_device_clock, trigger_lag
from engine.rig import RigError, load_rig
from engine.specs import CameraSpec, with_trigger

PERIOD_NS = 33_333_333


def camera_frames(n: int, drift: float, seed: int = 1) -> tuple[np.ndarray, ...]:
    """A camera clock near 2**60 (an epoch clock in ns), exposures every period with a
    little jitter, and arrivals 2 ms (its quickest delivery) plus random delay later."""
    rng = np.random.default_rng(seed)
    device = 1_796_000_000_000_000_000 + np.arange(n) * PERIOD_NS + rng.integers(-5000, 5000, n)
    exposed = 66_000_000_000_000 + np.round((device - device[0]) * (1 + drift)).astype(np.int64)
    arrived = exposed + 2_000_000 + rng.exponential(4e6, n).astype(np.int64)
    return device, exposed, arrived


@pytest.mark.parametrize("drift_ppm", [-150.0, 0.0, 80.0])
def test_offset_and_drift_are_measured_from_the_quickest_deliveries(drift_ppm):
    device, exposed, arrived = camera_frames(1800, drift_ppm * 1e-6)  # a minute at 30 fps
    clock = fit_device_clock(device, arrived)
    assert clock is not None and clock.frames == 1800
    assert clock.drift_ppm == pytest.approx(drift_ppm, abs=3)
    error_ms = (clock.to_host(device) - exposed) / 1e6
    # Mapped = exposure + the quickest delivery (2 ms), whatever the arrival jitter.
    assert error_ms.min() > 1.5 and error_ms.max() < 2.6, (error_ms.min(), error_ms.max())
    assert (clock.to_host(device) <= arrived).all()  # no exposure after its own arrival
    assert clock.delay_ms[0] == pytest.approx(4 * np.log(2), abs=0.5)  # median of the rest


def test_frames_without_a_device_stamp_and_repeats_are_left_out():
    device, _, arrived = camera_frames(200, 0.0)
    device[::7] = -1
    repeated_device = np.insert(device, 50, device[49])  # a repeat: the same frame again
    repeated_arrival = np.insert(arrived, 50, arrived[49] + PERIOD_NS)
    clock = fit_device_clock(repeated_device, repeated_arrival)
    assert clock is not None and clock.frames == np.count_nonzero(device >= 0)
    assert fit_device_clock(device[:MIN_FRAMES - 1], arrived[:MIN_FRAMES - 1]) is None
    assert fit_device_clock(np.full(100, -1), arrived[:100]) is None


def test_a_camera_exposing_on_its_trigger_follows_it_one_on_its_own_clock_does_not():
    device, exposed, arrived = camera_frames(300, 0.0)
    clock = fit_device_clock(device, arrived)
    assert clock is not None
    fired = exposed - 100_000  # exposure 0.1 ms after each trigger
    lag = trigger_lag(clock, device, fired)
    assert lag.follows(30.0) and lag.p99_ms - lag.p1_ms < 0.5
    # Triggers at moments of their own: the camera's exposures fall anywhere in a period.
    ignored = exposed - np.random.default_rng(2).integers(0, PERIOD_NS, len(exposed))
    lag = trigger_lag(clock, device, ignored)
    assert not lag.follows(30.0) and lag.p99_ms - lag.p1_ms > 25


def test_a_rig_trigger_goes_to_machine_vision_cameras_without_their_own(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text('[recording]\ntrigger = "hardware"\n[[cameras]]\nsource = "synthetic"\n')
    assert load_rig(path).recording.trigger == "hardware"
    cameras = [CameraSpec("a", "pylon:123"), CameraSpec("b", "genicam:Fake", settings={
        "trigger": "free"}), CameraSpec("c", "synthetic")]
    assert [c.settings.get("trigger") for c in with_trigger(cameras, "hardware")] == [
        "hardware", "free", None]
    path.write_text('[recording]\ntrigger = "sometimes"\n[[cameras]]\nsource = "synthetic"\n')
    with pytest.raises(RigError, match=r"rig.toml:2: recording.trigger: must be one of "
                                       r"software, hardware, free"):
        load_rig(path)
