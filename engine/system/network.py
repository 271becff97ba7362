"""Network state for the operator: "offline", "network-only" or "online".

offline: no interface other than loopback is up with an address. network-only: one is, but
none of the probe targets accepts a TCP connection. online: a target does.

The state goes down only after `down_after_failures` consecutive worse checks (a lost packet
is not an outage) and up after `up_after_successes` better ones. While the network is healthy
it is checked every `poll_ok_s`; while it is not, the interval starts at `poll_min_s` and
doubles up to `poll_max_s`, each interval with random jitter so that many machines do not
probe in step. `wake()` checks at once (for example after the user changed the Wi-Fi).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import psutil

from engine.system.wifi import read_wifi

log = logging.getLogger(__name__)

Status = Literal["offline", "network-only", "online"]
_RANK = {"offline": 0, "network-only": 1, "online": 2}


@dataclass(frozen=True)
class NetworkConfig:
    """Probe targets, hysteresis and polling; the defaults follow the reference runtime.

    The default targets are addresses, not names: a DNS lookup is not bounded by
    tcp_timeout_s and can hold a check (and stop()) for many seconds on a broken network.
    """

    targets: tuple[tuple[str, int], ...] = (("8.8.8.8", 443), ("1.1.1.1", 443))
    tcp_timeout_s: float = 1.0
    down_after_failures: int = 3
    up_after_successes: int = 1
    poll_ok_s: float = 5.0
    poll_min_s: float = 1.0
    poll_max_s: float = 20.0
    jitter_frac: float = 0.1


def tcp_probe(host: str, port: int, timeout: float) -> bool:
    """True when host:port accepts a TCP connection within timeout (DNS included)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError as exc:
        log.debug("probe %s:%d failed: %s", host, port, exc)
        return False


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def local_interfaces() -> list[dict[str, Any]]:
    """Interfaces that are up, not loopback, with a routable address: [{"name", "addresses"}]."""
    stats = psutil.net_if_stats()
    found = []
    for name, addresses in psutil.net_if_addrs().items():
        stat = stats.get(name)
        if stat is None or not stat.isup or "loopback" in getattr(stat, "flags", ""):
            continue
        usable = [a.address for a in addresses
                  if a.family in (socket.AF_INET, socket.AF_INET6) and _usable(a.address)]
        if usable:
            found.append({"name": name, "addresses": usable})
    return found


class NetworkMonitor:
    """Checks the network on its own thread (`start()` / `stop()`), or by `check_once()`.

    probe, interfaces, wifi, clock, sleep and rng are injectable so tests control time;
    sleep(wake_event, seconds) must return early once wake_event is set.
    """

    def __init__(
        self,
        config: NetworkConfig | None = None,
        *,
        probe: Callable[[str, int, float], bool] = tcp_probe,
        interfaces: Callable[[], list[dict[str, Any]]] = local_interfaces,
        wifi: Callable[[], dict[str, Any] | None] = read_wifi,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[threading.Event, float], object] | None = None,
        rng: random.Random | None = None,
        on_change: Callable[[Status, str], None] | None = None,
    ) -> None:
        self.config = config or NetworkConfig()
        self._probe = probe
        self._interfaces = interfaces
        self._wifi = wifi
        self._clock = clock
        self._sleep = sleep or (lambda event, seconds: event.wait(seconds))
        self._rng = rng or random.Random()
        self._on_change = on_change
        self._lock = threading.Lock()
        self._status: Status = "offline"
        self._detail = "not checked yet"
        self._changed_at = clock()
        self._seen_interfaces: list[dict[str, Any]] = []
        self._seen_wifi: dict[str, Any] | None = None
        self._worse = self._better = 0
        self._unhealthy_checks = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> Status:
        """The stable (hysteresis-filtered) state."""
        return self._status

    @property
    def changed_at(self) -> float:
        """clock() when the stable state last changed."""
        return self._changed_at

    @property
    def detail(self) -> str:
        """What the last check saw, for logs."""
        return self._detail

    def snapshot(self) -> dict[str, Any]:
        """{"status", "interfaces", "wifi"} as of the last check (the status-file schema)."""
        with self._lock:
            return {"status": self._status,
                    "interfaces": [dict(i, addresses=list(i["addresses"]))
                                   for i in self._seen_interfaces],
                    "wifi": dict(self._seen_wifi) if self._seen_wifi else None}

    def check_once(self) -> Status:
        """Look at the interfaces, probe the targets, apply hysteresis; the stable state."""
        observed, detail, interfaces = self._observe()
        try:
            wifi = self._wifi() if interfaces else None
        except Exception as exc:  # a platform quirk must not stop the monitor
            log.debug("cannot read Wi-Fi: %s", exc)
            wifi = None
        healthy = observed == ("online" if self.config.targets else "network-only")
        changed = None
        with self._lock:
            self._seen_interfaces, self._seen_wifi, self._detail = interfaces, wifi, detail
            self._unhealthy_checks = 0 if healthy else self._unhealthy_checks + 1
            if _RANK[observed] < _RANK[self._status]:
                self._worse, self._better = self._worse + 1, 0
                if self._worse >= self.config.down_after_failures:
                    changed = observed
            elif _RANK[observed] > _RANK[self._status]:
                self._better, self._worse = self._better + 1, 0
                if self._better >= self.config.up_after_successes:
                    changed = observed
            else:
                self._worse = self._better = 0
            if changed is not None:
                self._status, self._changed_at = changed, self._clock()
                self._worse = self._better = 0
        if changed is not None:
            log.info("network %s: %s", changed, detail)
            if self._on_change is not None:
                try:
                    self._on_change(changed, detail)
                except Exception:
                    log.exception("network change callback failed")
        return self._status

    def next_delay(self) -> float:
        """Seconds until the next check: poll_ok_s if healthy, else the doubling backoff."""
        cfg = self.config
        with self._lock:
            failures = self._unhealthy_checks
        if failures == 0:
            base = cfg.poll_ok_s
        else:
            base = min(cfg.poll_min_s * 2 ** min(failures - 1, 32), cfg.poll_max_s)
        return base * (1.0 + self._rng.uniform(-cfg.jitter_frac, cfg.jitter_frac))

    def wake(self) -> None:
        """Check now instead of at the end of the current interval."""
        self._wake.set()

    def start(self) -> None:
        """Start checking on a daemon thread; the first check runs at once."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="network-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a probe in progress, at most one timeout per target)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join()

    def _observe(self) -> tuple[Status, str, list[dict[str, Any]]]:
        try:
            interfaces = self._interfaces()
        except Exception as exc:
            log.warning("cannot list network interfaces: %s", exc)
            return "offline", f"cannot list network interfaces: {exc}", []
        if not interfaces:
            return "offline", "no network interface is up with an address", []
        for host, port in self.config.targets:
            if self._stopping.is_set():
                break
            try:
                reached = self._probe(host, port, self.config.tcp_timeout_s)
            except Exception as exc:
                log.debug("probe %s:%d raised %s", host, port, exc)
                reached = False
            if reached:
                return "online", f"{host}:{port} answered", interfaces
        names = ", ".join(f"{host}:{port}" for host, port in self.config.targets)
        return "network-only", f"no answer from {names or 'any target'}", interfaces

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check_once()
            except Exception:
                log.exception("network check failed")
            if self._stopping.is_set():
                break
            self._sleep(self._wake, self.next_delay())
            self._wake.clear()
