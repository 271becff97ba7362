"""Record button: the press classifier on a fake line with an injected clock."""

from __future__ import annotations

import logging
import queue
import sys
import tomllib
import types
from pathlib import Path

import pytest

from engine.system.button import (
    GPIO_EXTRA,
    ButtonConfig,
    ButtonPoller,
    Press,
    PressClassifier,
    open_gpio_button,
    run_hook,
)

TICK = 0.02  # the reference's check interval


pytestmark = pytest.mark.usefixtures("no_thread_leaks")


class FakeLine:
    """A button line described as press intervals [(down, up), ...] in seconds."""

    def __init__(self, *presses: tuple[float, float]) -> None:
        self.presses = presses

    def pressed(self, t: float) -> bool:
        return any(down <= t < up for down, up in self.presses)

    def poll(self, classifier: PressClassifier, until: float) -> list[tuple[float, Press]]:
        """Sample the line every TICK as the polling backend does; presses with their time."""
        events = []
        for step in range(round(until / TICK) + 1):
            t = step * TICK
            events += [(round(t, 3), press) for press in classifier.update(t, self.pressed(t))]
        return events

    def edges(self, classifier: PressClassifier, until: float) -> list[tuple[float, Press]]:
        """Only the edges, plus one idle sample at the end (an interrupt-driven backend)."""
        samples = sorted([(down, True) for down, _ in self.presses]
                         + [(up, False) for _, up in self.presses] + [(until, False)])
        return [(t, press) for t, pressed in samples for press in classifier.update(t, pressed)]


def test_short_press_fires_on_release_when_no_double_is_possible() -> None:
    classifier = PressClassifier(allow_double=lambda: False)  # e.g. while recording
    assert FakeLine((0.1, 0.3)).poll(classifier, 2.0) == [(0.3, Press.SHORT)]


def test_short_press_in_idle_waits_out_the_double_press_window() -> None:
    events = FakeLine((0.1, 0.3)).poll(PressClassifier(), 2.0)
    assert [press for _, press in events] == [Press.SHORT]
    assert 0.8 <= events[0][0] <= 0.8 + 2 * TICK  # release + 0.5 s window


def test_double_press_within_the_window() -> None:
    events = FakeLine((0.1, 0.2), (0.5, 0.6)).poll(PressClassifier(), 3.0)
    assert events == [(0.5, Press.DOUBLE)]


def test_two_presses_further_apart_are_two_short_presses() -> None:
    events = FakeLine((0.1, 0.2), (0.9, 1.0)).poll(PressClassifier(), 3.0)
    assert [press for _, press in events] == [Press.SHORT, Press.SHORT]


def test_long_press_fires_at_five_seconds_while_still_held() -> None:
    events = FakeLine((1.0, 8.0)).poll(PressClassifier(), 9.0)
    assert events == [(6.0, Press.LONG)]  # nothing more on release


def test_a_press_just_under_five_seconds_is_short() -> None:
    events = FakeLine((1.0, 5.9)).poll(PressClassifier(allow_double=lambda: False), 7.0)
    assert events == [(5.9, Press.SHORT)]


def test_edges_only_give_the_same_presses() -> None:
    line = FakeLine((0.1, 0.2), (0.4, 0.5), (2.0, 2.2), (4.0, 10.0))
    events = line.edges(PressClassifier(allow_double=lambda: False), 12.0)
    assert [press for _, press in events] == [Press.SHORT, Press.SHORT, Press.SHORT,
                                              Press.LONG]
    assert [press for _, press in FakeLine((0.1, 0.2), (0.4, 0.5)).edges(
        PressClassifier(), 2.0)] == [Press.DOUBLE]


def test_parameters_follow_the_config() -> None:
    config = ButtonConfig(long_press_threshold_s=2.0, double_press_window_s=0.2)
    assert FakeLine((0.0, 2.5)).poll(PressClassifier(config), 3.0) == [(2.0, Press.LONG)]
    events = FakeLine((0.1, 0.2), (0.5, 0.6)).poll(PressClassifier(config), 2.0)
    assert [press for _, press in events] == [Press.SHORT, Press.SHORT]


class ScriptedLine:
    """A line read by the poller's thread: each read moves the clock to the next scripted
    (time, pressed) sample; after the script the button stays released."""

    def __init__(self, *samples: tuple[float, bool]) -> None:
        self.samples = list(samples)
        self.now = 0.0

    def read(self) -> bool:
        if not self.samples:
            self.now += 1.0
            return False
        self.now, pressed = self.samples.pop(0)
        return pressed


def test_poller_thread_delivers_presses_from_a_line() -> None:
    presses: queue.Queue[Press] = queue.Queue()
    line = ScriptedLine((0.0, False), (0.1, True), (0.3, False), (2.0, True), (4.0, True),
                        (7.5, True), (8.0, False))
    poller = ButtonPoller(line.read, presses.put, ButtonConfig(check_interval_s=0.001),
                          allow_double=lambda: False, clock=lambda: line.now)
    poller.start()
    try:
        assert presses.get(timeout=5) == Press.SHORT
        assert presses.get(timeout=5) == Press.LONG
    finally:
        poller.stop()
    assert presses.empty()


def test_a_rig_button_without_libgpiod_names_the_extra_that_installs_it(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "gpiod", None)  # what an install without it imports
    with caplog.at_level(logging.WARNING, logger="engine.system.button"):
        assert open_gpio_button("/dev/gpiochip0", 17, lambda press: None) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "record button on /dev/gpiochip0 line 17" in record.getMessage()
    assert "pip install 'recorder-workstation[gpio]'" in record.getMessage()
    # ... an extra the project declares, for the bindings the button speaks (libgpiod 2).
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    name, _, extra = GPIO_EXTRA.rstrip("]").partition("[")
    assert name == project["project"]["name"]
    assert [r.split(">=")[0] for r in project["project"]["optional-dependencies"][extra]] \
        == ["gpiod"]


def test_a_rig_button_on_a_chip_that_is_not_there_says_so(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "gpiod", types.ModuleType("gpiod"))
    with caplog.at_level(logging.WARNING, logger="engine.system.button"):
        assert open_gpio_button("/dev/gpiochip-that-does-not-exist", 17,
                                lambda press: None) is None
    assert "no such GPIO chip" in caplog.text and "gpiochip-that-does-not-exist" in caplog.text


def test_run_hook_runs_the_network_setup_command_off_the_button_thread(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="engine.system.button"):
        run_hook(f"{sys.executable} -c pass").join(timeout=30)
        run_hook(f"{sys.executable} -c 'import sys; sys.exit(3)'").join(timeout=30)
        run_hook("/no/such/network-setup").join(timeout=30)
    assert "done" in caplog.text
    assert "exited with 3" in caplog.text
    assert "/no/such/network-setup" in caplog.text
