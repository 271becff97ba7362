"""Network monitor against TCP servers on 127.0.0.1 that go up and down, on injected time."""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from engine.system.network import NetworkConfig, NetworkMonitor, local_interfaces, tcp_probe
from engine.system.wifi import parse_iw_link, parse_nmcli_ssid, read_wifi, wireless_levels

ETH0 = [{"name": "eth0", "addresses": ["192.0.2.7"]}]
JITTER = 0.1


pytestmark = pytest.mark.usefixtures("no_thread_leaks")


class TcpServer:
    """A listener on 127.0.0.1 that accepts and closes connections; stop() and start() again
    on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._socket = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._socket is listener:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.close()

    def stop(self) -> None:
        listener, self._socket = self._socket, None
        if self._thread is not None:
            self._thread.join()
        if listener is not None:
            listener.close()


@pytest.fixture
def server() -> Iterator[TcpServer]:
    server = TcpServer()
    server.start()
    yield server
    server.stop()


class Interfaces:
    def __init__(self) -> None:
        self.up = list(ETH0)

    def __call__(self) -> list[dict]:
        return self.up


class FakeTime:
    """clock() and sleep(wake, seconds) for the monitor's thread: each sleep is reported to
    the test, and ends when the test lets it (time then moves on by its length) or on wake."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: queue.Queue[float] = queue.Queue()
        self.gate = threading.Semaphore(0)

    def clock(self) -> float:
        return self.now

    def sleep(self, wake: threading.Event, seconds: float) -> None:
        self.sleeps.put(seconds)
        while not wake.is_set():
            if self.gate.acquire(timeout=0.01):
                self.now += seconds
                return

    def next_sleep(self) -> float:
        return self.sleeps.get(timeout=5)


def make_monitor(server: TcpServer, interfaces: Interfaces, **kwargs) -> NetworkMonitor:
    config = NetworkConfig(targets=(("127.0.0.1", server.port),), tcp_timeout_s=1.0)
    kwargs.setdefault("wifi", lambda: None)
    return NetworkMonitor(config, interfaces=interfaces, rng=random.Random(7), **kwargs)


def assert_about(delay: float, base: float) -> None:
    assert base * (1 - JITTER) <= delay <= base * (1 + JITTER), (delay, base)


def test_probe_against_a_real_listener(server: TcpServer) -> None:
    assert tcp_probe("127.0.0.1", server.port, 1.0)
    server.stop()
    assert not tcp_probe("127.0.0.1", server.port, 1.0)


def test_online_goes_down_after_three_failures_and_up_after_one_success(
        server: TcpServer) -> None:
    now = [0.0]
    changes = []
    monitor = make_monitor(server, Interfaces(), clock=lambda: now[0],
                           on_change=lambda status, detail: changes.append(status))
    now[0] = 1.0
    assert monitor.check_once() == "online"  # up after one success
    assert monitor.changed_at == 1.0
    server.stop()
    now[0] = 2.0
    assert [monitor.check_once() for _ in range(2)] == ["online", "online"]
    assert monitor.detail.startswith("no answer from 127.0.0.1:")
    assert monitor.check_once() == "network-only"
    assert monitor.changed_at == 2.0
    server.start()  # same port
    assert monitor.check_once() == "online"
    server.stop()
    monitor.check_once()
    monitor.check_once()
    server.start()
    assert monitor.check_once() == "online"  # two failures then a success: never went down
    assert changes == ["online", "network-only", "online"]


def test_offline_without_an_interface(server: TcpServer) -> None:
    interfaces = Interfaces()
    monitor = make_monitor(server, interfaces)
    assert monitor.check_once() == "online"
    interfaces.up = []
    assert [monitor.check_once() for _ in range(3)] == ["online", "online", "offline"]
    snapshot = monitor.snapshot()
    assert snapshot == {"status": "offline", "interfaces": [], "wifi": None}
    interfaces.up = list(ETH0)
    server.stop()
    assert monitor.check_once() == "network-only"  # better than offline: up at once
    assert monitor.snapshot()["interfaces"] == ETH0


def test_backoff_doubles_to_20_s_with_jitter_and_resets_on_recovery(server: TcpServer) -> None:
    monitor = make_monitor(server, Interfaces())
    monitor.check_once()
    assert_about(monitor.next_delay(), 5.0)
    server.stop()
    delays = []
    for _ in range(8):
        monitor.check_once()
        delays.append(monitor.next_delay())
    for delay, base in zip(delays, [1, 2, 4, 8, 16, 20, 20, 20], strict=True):
        assert_about(delay, base)
    assert len({round(d, 6) for d in delays[5:]}) == 3  # jittered, not identical
    server.start()
    monitor.check_once()
    assert_about(monitor.next_delay(), 5.0)
    server.stop()
    monitor.check_once()
    assert_about(monitor.next_delay(), 1.0)  # the backoff starts again from 1 s


def test_jitter_stays_within_its_fraction() -> None:
    monitor = NetworkMonitor(NetworkConfig(), interfaces=list, wifi=lambda: None,
                             rng=random.Random(1))
    monitor.check_once()  # offline: first backoff step
    delays = [monitor.next_delay() for _ in range(500)]
    assert min(delays) >= 0.9 and max(delays) <= 1.1
    assert max(delays) - min(delays) > 0.15


def test_the_thread_follows_the_schedule_and_wake_checks_at_once(server: TcpServer) -> None:
    fake = FakeTime()
    checks = []

    def probe(host: str, port: int, timeout: float) -> bool:
        checks.append(fake.now)
        return tcp_probe(host, port, timeout)

    monitor = make_monitor(server, Interfaces(), probe=probe, clock=fake.clock,
                           sleep=fake.sleep)
    monitor.start()
    try:
        assert_about(fake.next_sleep(), 5.0)  # first check at once: online
        assert monitor.status == "online"
        server.stop()
        fake.gate.release()
        for base in (1, 2, 4, 8, 16, 20):  # fails, fails, down, ... backing off
            assert_about(fake.next_sleep(), base)
            fake.gate.release()
        assert_about(fake.next_sleep(), 20)
        assert monitor.status == "network-only"
        server.start()
        before = len(checks)
        monitor.wake()  # in the middle of a 20 s sleep
        assert_about(fake.next_sleep(), 5.0)
        assert len(checks) == before + 1
        assert monitor.status == "online"
        assert checks[-1] == checks[-2]  # no time passed: the sleep was cut short
    finally:
        monitor.stop()


def test_wake_and_stop_cut_a_real_long_sleep_short(server: TcpServer) -> None:
    checked = threading.Semaphore(0)

    def probe(host: str, port: int, timeout: float) -> bool:
        checked.release()
        return tcp_probe(host, port, timeout)

    config = NetworkConfig(targets=(("127.0.0.1", server.port),), poll_ok_s=300.0)
    monitor = NetworkMonitor(config, probe=probe, interfaces=Interfaces(), wifi=lambda: None)
    monitor.start()
    try:
        assert checked.acquire(timeout=5)
        monitor.wake()
        assert checked.acquire(timeout=5)
    finally:
        started = time.monotonic()
        monitor.stop()
    assert time.monotonic() - started < 2.0


def test_a_failing_interface_listing_or_probe_is_offline_not_a_crash() -> None:
    def broken() -> list[dict]:
        raise OSError("netlink unavailable")

    def exploding(host: str, port: int, timeout: float) -> bool:
        raise RuntimeError("bug in a probe")

    down = NetworkMonitor(interfaces=broken, wifi=lambda: None)
    down.check_once()
    assert down.status == "offline" and "netlink" in down.detail
    noisy = NetworkMonitor(interfaces=lambda: ETH0, probe=exploding, wifi=lambda: None)
    assert noisy.check_once() == "network-only"


def test_local_interfaces_leave_out_loopback() -> None:
    for interface in local_interfaces():
        assert interface["name"] != "lo" and interface["addresses"]
        for address in interface["addresses"]:
            assert not address.startswith(("127.", "::1", "fe80"))


PROC_WIRELESS = """\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   48.  -62.  -256        0      0      0      0      0        0
"""

IW_LINK = """\
Connected to aa:bb:cc:dd:ee:ff (on wlan0)
\tSSID: studio-5G
\tfreq: 5180
\tsignal: -58 dBm
\ttx bitrate: 433.3 MBit/s
"""


def test_wifi_parsers() -> None:
    assert wireless_levels(PROC_WIRELESS) == {"wlan0": -62}
    assert wireless_levels(PROC_WIRELESS.replace("-62.", "0.")) == {"wlan0": None}
    assert parse_iw_link(IW_LINK) == ("studio-5G", -58)
    assert parse_iw_link("Not connected.\n") == (None, None)
    assert parse_nmcli_ssid("no:other\nyes:my\\:net\n") == "my:net"


def test_read_wifi_from_proc_and_tools(tmp_path) -> None:
    proc = tmp_path / "wireless"
    proc.write_text(PROC_WIRELESS)
    outputs = {"iw": IW_LINK, "nmcli": "yes:office\n"}
    assert read_wifi(proc, run=lambda argv: outputs.get(argv[0])) == {
        "ssid": "studio-5G", "signal_dbm": -58}
    assert read_wifi(proc, run=lambda argv: "yes:office\n" if argv[0] == "nmcli" else None) \
        == {"ssid": "office", "signal_dbm": -62}
    assert read_wifi(proc, run=lambda argv: None) == {"ssid": "", "signal_dbm": -62}
    assert read_wifi(proc, run=lambda argv: "Not connected.\n" if argv[0] == "iw" else None) \
        is None
    assert read_wifi(tmp_path / "absent", run=lambda argv: None) is None
