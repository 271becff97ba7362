"""Network cameras that announce themselves on the local network (ONVIF WS-Discovery).

One WS-Discovery Probe (the 2005/04 version ONVIF uses) is multicast to 239.255.255.250:3702
from every interface with an IPv4 address, through the WSDiscovery library; every ONVIF
device on those links answers with its device service address (XAddrs) and its scopes
(onvif://www.onvif.org/name/..., hardware/..., location/...). The probe names no type:
ONVIF requires devices to answer such a probe, and it finds both the cameras that
announce dn:NetworkVideoTransmitter and those that announce only tds:Device; answers from
other WS-Discovery peers (printers, PCs) are dropped here.

Discovery cannot tell when every camera has answered, so the probe always takes its
timeout (PROBE_TIMEOUT_S): `list_cameras` runs it in a thread of its own while the USB
nodes are probed. It never fails the listing: without the library, without a network, or
with a socket the machine refuses, it finds nothing. Nothing here opens a stream.

What a camera's entry cannot say: the RTSP stream's path and the credentials. Its
`source` is only a hint (rtsp://HOST/); the user completes it from the camera's manual or
its ONVIF media service (GetStreamUri, which needs the camera's user and password).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

try:  # optional: without it, discovery lists no network cameras
    from wsdiscovery.discovery import (  # type: ignore[import-untyped]
        ThreadedWSDiscovery as _WSDiscovery,
    )
except ImportError:  # pragma: no cover - the library is a declared dependency
    _WSDiscovery = None

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.5  # answers come within 0.5 s (WS-Discovery's APP_MAX_DELAY) plus the trip
STOP_GRACE_S = 0.5  # past the timeout, a wedged library is given up on (its threads are daemons)

ONVIF_SCOPE_PREFIX = "onvif://www.onvif.org/"
ONVIF_TYPES = {
    ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter"),
    ("http://www.onvif.org/ver10/device/wsdl", "Device"),
}
RTSP_HINT = ("rtsp://USER:PASSWORD@{host}:554/PATH — the stream's path is in the camera's "
             "manual or its ONVIF media service (GetStreamUri, with the camera's credentials)")


def available() -> bool:
    """Whether the WS-Discovery library is installed (without it nothing is probed)."""
    return _WSDiscovery is not None


class NetworkProbe:
    """One WS-Discovery probe, started at once in a daemon thread; `result()` collects it.

    `result()` returns within the timeout (plus STOP_GRACE_S however the library
    behaves), with [] when the probe failed or found nothing.
    """

    def __init__(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s + STOP_GRACE_S
        self._done = threading.Event()
        self._cameras: list[dict[str, Any]] = []
        if timeout_s <= 0 or _WSDiscovery is None:
            self._done.set()
            return
        threading.Thread(target=self._run, name="onvif-probe", daemon=True).start()

    def result(self) -> list[dict[str, Any]]:
        """The ONVIF cameras that answered, sorted by host; waits for the probe to end."""
        if not self._done.wait(max(0.0, self._deadline - time.monotonic())):
            log.debug("ONVIF probe gave no result within %.1f s", self._timeout_s)
            return []
        return list(self._cameras)

    def _run(self) -> None:
        wsd = None
        try:
            wsd = _WSDiscovery()
            wsd.start()
            self._cameras = cameras_from_services(wsd.searchServices(timeout=self._timeout_s))
        except Exception as exc:  # a socket or library failure must not fail the listing
            log.debug("ONVIF probe failed: %r", exc)
        finally:
            self._done.set()  # the caller need not wait for the library's threads to stop
            if wsd is not None:
                try:
                    wsd.stop()
                except Exception as exc:  # half-started (e.g. port 3702 refused): daemons
                    log.debug("ONVIF probe did not stop cleanly: %r", exc)


def find_onvif_cameras(timeout_s: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:
    """Probe the local network for ONVIF cameras; takes the timeout, never raises."""
    return NetworkProbe(timeout_s).result()


def cameras_from_services(services: Iterable[Any]) -> list[dict[str, Any]]:
    """Discovery entries for the services that are ONVIF devices with an address."""
    entries = {}
    for service in services:
        entry = camera_entry(
            [(t.getNamespace(), t.getLocalname()) for t in service.getTypes() or []],
            [s.getValue() for s in service.getScopes() or []],
            list(service.getXAddrs() or []),
            str(service.getEPR() or ""),
        )
        if entry is not None:
            entries[entry["endpoint"] or entry["host"]] = entry
    return sorted(entries.values(), key=lambda e: (e["host"], e["name"], e["endpoint"]))


def camera_entry(
    types: list[tuple[str, str]], scopes: list[str], xaddrs: list[str], endpoint: str
) -> dict[str, Any] | None:
    """One discovery entry for an ONVIF device, or None for another kind of peer or a
    device that gave no address to reach it at."""
    scopes = [unquote(scope) for scope in scopes]
    if not (ONVIF_TYPES & set(types)
            or any(s.lower().startswith(ONVIF_SCOPE_PREFIX) for s in scopes)):
        return None
    host = _host(xaddrs)
    if host is None:
        return None
    named = _onvif_scopes(scopes)
    name, hardware = named.get("name", ""), named.get("hardware", "")
    what = f"{name} ({hardware})" if name and hardware else name or hardware or host
    source = f"rtsp://{host}/"
    return {
        "source": source,
        "kind": "network",
        "description": f"ONVIF camera {what}: complete {source} with the stream path "
                       "and user:password",
        "host": host.strip("[]"),
        "xaddrs": xaddrs,
        "name": name,
        "hardware": hardware,
        "location": named.get("location", ""),
        "scopes": scopes,
        "endpoint": endpoint,
        "hint": RTSP_HINT.format(host=host),
    }


def _onvif_scopes(scopes: list[str]) -> dict[str, str]:
    """name, hardware and location from onvif://www.onvif.org/<category>/<value> scopes
    (several location scopes, e.g. country/... and city/..., are joined by ", ")."""
    found: dict[str, list[str]] = {}
    for scope in scopes:
        if not scope.lower().startswith(ONVIF_SCOPE_PREFIX):
            continue
        category, _, value = scope[len(ONVIF_SCOPE_PREFIX):].strip("/").partition("/")
        if category.lower() in ("name", "hardware", "location") and value:
            found.setdefault(category.lower(), []).append(value)
    return {category: ", ".join(values) for category, values in found.items()}


def _host(xaddrs: list[str]) -> str | None:
    """The device's host from its XAddrs, an IPv4 address or name first (an IPv6 one in
    brackets, ready for a URL); None when none parses."""
    hosts = []
    for xaddr in xaddrs:
        try:
            host = urlsplit(xaddr).hostname
        except ValueError:
            continue
        if host:
            hosts.append(host)
    for host in hosts:
        try:
            if ipaddress.ip_address(host).version == 6:
                continue
        except ValueError:
            pass  # a name
        return host
    return f"[{hosts[0]}]" if hosts else None


class _DropUnhandledProbes(logging.Filter):
    """The library's discoverer hears every Probe on the link (its own too) and warns that
    it has no handler for it: noise on every listing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("could not find handler for: _handle_probe",
                                                   "could not find handler for: _handle_resolve"))


if _WSDiscovery is not None:
    logging.getLogger("daemon").addFilter(_DropUnhandledProbes())  # the library's logger
