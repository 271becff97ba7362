"""Network cameras by ONVIF WS-Discovery: a real WS-Discovery peer on this machine.

The fake camera is the WSDiscovery library's own publisher (what answers a Probe on a
real network), announcing dn:NetworkVideoTransmitter with onvif:// scopes on this
machine's interfaces: the Probe is multicast to 239.255.255.250:3702 from the machine's
IPv4 address and comes back by multicast loopback, the answer by unicast. No route and
no interface is changed. A machine with no IPv4 address but loopback cannot multicast
(the library, like a camera, does not use loopback): those tests are skipped there.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from engine import cli
from engine.sources import onvif_discovery
from engine.sources.discovery import list_cameras
from engine.sources.onvif_discovery import (
    PROBE_TIMEOUT_S,
    STOP_GRACE_S,
    NetworkProbe,
    camera_entry,
    find_onvif_cameras,
)

wsdiscovery = pytest.importorskip("wsdiscovery")
from wsdiscovery import QName, Scope  # noqa: E402
from wsdiscovery.publishing import ThreadedWSPublishing  # noqa: E402

NVT = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
PRINTER = QName("http://schemas.microsoft.com/windows/2006/08/wdp/print", "PrintDeviceType",
                "wprt")
# The USB probe may take its 2 s beside the network probe; a loaded machine gets a margin.
LISTING_LIMIT_S = max(PROBE_TIMEOUT_S, 2.0) + STOP_GRACE_S + 1.0


def _local_ipv4() -> str | None:
    """The address multicast to the WS-Discovery group leaves from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("239.255.255.250", 3702))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith(("0.", "127.")) else address


LOCAL_IPV4 = _local_ipv4()
needs_multicast = pytest.mark.skipif(
    LOCAL_IPV4 is None, reason="no IPv4 interface to multicast from (WS-Discovery skips loopback)"
)


class _FakeCamera(ThreadedWSPublishing):
    """The library's publisher, answering each Probe only on the thread of its address
    family: WSDiscovery 2.1.2 queues a unicast answer on both its IPv4 and IPv6 threads,
    and the thread of the other family dies on it (gaierror), so a stock publisher stops
    answering after its first Probe. (The discovering side sends no unicast.)"""

    def sendUnicastMessage(self, env, host, port, initialDelay=0, unicast_num=2):
        thread = self._networkingThread_v6 if ":" in host else self._networkingThread_v4
        if thread is not None:
            thread.addUnicastMessage(env, host, port, initialDelay, unicast_num)


def _publish(types, scopes, xaddrs) -> _FakeCamera:
    peer = _FakeCamera()
    peer.start()
    peer.publishService(types=types, scopes=[Scope(s) for s in scopes], xAddrs=xaddrs)
    return peer


@pytest.fixture
def fake_camera() -> Iterator[dict[str, str]]:
    """An ONVIF camera with a name no other peer has, plus a WS-Discovery printer on the
    same machine (which the listing must leave out)."""
    name = f"Test Cam {uuid.uuid4().hex[:8]}"
    xaddr = f"http://{LOCAL_IPV4}:8080/onvif/device_service"
    camera = _publish(
        [NVT],
        [f"onvif://www.onvif.org/name/{name.replace(' ', '%20')}",
         "onvif://www.onvif.org/hardware/FK-100", "onvif://www.onvif.org/location/city/Lab",
         "onvif://www.onvif.org/location/building/B2", "onvif://www.onvif.org/Profile/Streaming"],
        [xaddr],
    )
    printer = _publish([PRINTER], ["ldap:///ou=printers"], [f"http://{LOCAL_IPV4}:5357/print"])
    try:
        yield {"name": name, "xaddr": xaddr, "endpoint": camera.uuid}
    finally:
        camera.stop()
        printer.stop()


def _timed_listing() -> tuple[list[dict], float]:
    started = time.monotonic()
    cameras = list_cameras()
    return cameras, time.monotonic() - started


@needs_multicast
@pytest.mark.timeout(60)
def test_a_published_onvif_camera_is_listed_with_its_address_scopes_and_a_source_hint(
    fake_camera,
):
    cameras, took = _timed_listing()
    assert took < LISTING_LIMIT_S
    assert cameras[0]["kind"] == "synthetic"
    ours = [c for c in cameras if c.get("name") == fake_camera["name"]]
    assert ours == [{
        "source": f"rtsp://{LOCAL_IPV4}/",
        "kind": "network",
        "description": f"ONVIF camera {fake_camera['name']} (FK-100): complete "
                       f"rtsp://{LOCAL_IPV4}/ with the stream path and user:password",
        "host": LOCAL_IPV4,
        "xaddrs": [fake_camera["xaddr"]],
        "name": fake_camera["name"],
        "hardware": "FK-100",
        "location": "city/Lab, building/B2",
        "scopes": [f"onvif://www.onvif.org/name/{fake_camera['name']}",
                   "onvif://www.onvif.org/hardware/FK-100",
                   "onvif://www.onvif.org/location/city/Lab",
                   "onvif://www.onvif.org/location/building/B2",
                   "onvif://www.onvif.org/Profile/Streaming"],
        "endpoint": fake_camera["endpoint"],
        "hint": f"rtsp://USER:PASSWORD@{LOCAL_IPV4}:554/PATH — the stream's path is in the "
                "camera's manual or its ONVIF media service (GetStreamUri, with the camera's "
                "credentials)",
    }]
    assert not [c for c in cameras if "5357/print" in " ".join(c.get("xaddrs", []))]
    # the peer keeps answering: a second listing (a new Probe) finds it again
    again, _ = _timed_listing()
    assert [c["endpoint"] for c in again if c.get("name") == fake_camera["name"]] == [
        fake_camera["endpoint"]
    ]


@needs_multicast
@pytest.mark.timeout(60)
def test_cli_cameras_shows_the_network_camera_and_what_to_fill_in(fake_camera, capsys):
    assert cli.main(["cameras"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if fake_camera["name"] in line)
    assert lines[at].startswith(f"rtsp://{LOCAL_IPV4}/ network ")
    assert lines[at + 1].strip() == f"ONVIF device service: {fake_camera['xaddr']}"
    assert lines[at + 2].strip().startswith(f"stream: rtsp://USER:PASSWORD@{LOCAL_IPV4}:554/PATH")
    assert cli.main(["cameras", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert fake_camera["name"] in [c.get("name") for c in listed]


@pytest.mark.timeout(60)
def test_with_nothing_published_the_listing_returns_within_the_probe_timeout():
    """No peer of ours answers (a camera stopped, or none on the network): the listing
    costs at most the probe's timeout beside the USB probe, and fails nothing."""
    name = f"Test Cam {uuid.uuid4().hex[:8]}"
    if LOCAL_IPV4 is not None:
        gone = _publish([NVT], [f"onvif://www.onvif.org/name/{name.replace(' ', '%20')}"],
                        [f"http://{LOCAL_IPV4}:8080/onvif/device_service"])
        gone.stop()
    cameras, took = _timed_listing()
    assert took < LISTING_LIMIT_S
    assert cameras[0]["kind"] == "synthetic"
    assert name not in [c.get("name") for c in cameras]
    started = time.monotonic()
    found = find_onvif_cameras(0.5)
    assert time.monotonic() - started < 0.5 + STOP_GRACE_S + 0.5
    assert name not in [c.get("name") for c in found]


def test_a_zero_timeout_or_a_missing_library_probes_nothing(monkeypatch):
    started = time.monotonic()
    assert NetworkProbe(0).result() == []
    monkeypatch.setattr(onvif_discovery, "_WSDiscovery", None)
    assert not onvif_discovery.available()
    assert NetworkProbe(5.0).result() == []
    assert time.monotonic() - started < 0.5


@pytest.mark.timeout(60)
def test_discovery_imports_and_lists_without_the_library():
    code = (
        "import sys; sys.modules['wsdiscovery'] = None  # import wsdiscovery -> ImportError\n"
        "from engine.sources import onvif_discovery\n"
        "from engine.sources.discovery import list_cameras\n"
        "assert not onvif_discovery.available()\n"
        "print(list_cameras()[0]['source'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "synthetic"


class _Refused:
    """A library whose sockets the machine refuses (e.g. port 3702 taken without reuse)."""

    def start(self):
        raise OSError(98, "Address already in use")

    def stop(self):
        raise AttributeError("half started")


class _Wedged:
    """A library that never comes back from its search."""

    def start(self):
        pass

    def searchServices(self, timeout):
        time.sleep(30)

    def stop(self):
        pass


@pytest.mark.parametrize("library", [_Refused, _Wedged])
def test_a_failing_or_wedged_library_costs_at_most_the_timeout_and_raises_nothing(
    monkeypatch, library
):
    monkeypatch.setattr(onvif_discovery, "_WSDiscovery", library)
    started = time.monotonic()
    assert find_onvif_cameras(0.3) == []
    assert time.monotonic() - started < 0.3 + STOP_GRACE_S + 0.3


def test_entries_take_either_onvif_type_or_onvif_scopes_and_need_an_address():
    device = ("http://www.onvif.org/ver10/device/wsdl", "Device")
    only_device = camera_entry([device], [], ["http://[fe80::1]/onvif/device_service",
                                              "http://10.0.0.7/onvif/device_service"], "urn:a")
    assert only_device is not None
    assert only_device["source"] == "rtsp://10.0.0.7/"  # IPv4 first
    assert only_device["description"].startswith("ONVIF camera 10.0.0.7: ")  # no name scope
    v6 = camera_entry([], ["onvif://www.onvif.org/name/Cam%201"],
                      ["http://[2001:db8::5]:80/onvif/device_service"], "urn:b")
    assert v6 is not None
    assert (v6["source"], v6["host"], v6["name"]) == ("rtsp://[2001:db8::5]/", "2001:db8::5",
                                                      "Cam 1")
    assert camera_entry([device], [], [], "urn:c") is None  # nowhere to reach it
    assert camera_entry([("http://example.com/print", "Printer")], ["ldap:///x"],
                        ["http://10.0.0.9/"], "urn:d") is None  # not an ONVIF device
