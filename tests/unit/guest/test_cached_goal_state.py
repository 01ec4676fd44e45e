"""The WireServer's goal state is cached bytes, for agents that close every connection
(waagent sends `Connection: close`) as for those that keep it; the metadata listener
still renders what closes a connection."""

from __future__ import annotations

from openimds.core.guest.api import wireserver_dispatcher
from openimds.core.guest.reports import AgentStatus, HealthReport
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import LiveInventory
from openimds.web.access_log import AccessLog
from openimds.web.metadata.protocol import MetadataServer
from openimds.web.metrics import RequestMetrics
from tests.support.imds import vm_spec
from tests.support.listener import metadata_server, send


class CountingPlane:
    def __init__(self) -> None:
        self.rendered = 0

    def incarnation(self, vm: VmSnapshot) -> int:
        self.rendered += 1
        return 1

    def wireserver_url(self) -> str:
        return "http://168.63.129.16:80"

    def has_certificates(self, vm: VmSnapshot) -> bool:
        return False

    def sealed_certificates(self, vm: VmSnapshot, transport_cert: str, cipher: str) -> str:
        raise AssertionError("no certificates here")

    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None:
        raise AssertionError("no reports here")

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None:
        raise AssertionError("no reports here")


def _server(plane: CountingPlane, fleet: LiveInventory, *, cache_closing: bool) -> MetadataServer:
    return MetadataServer(
        wireserver_dispatcher(plane),
        fleet,
        {"imds": RateLimiter(0)},
        server_header="IMDS/test",
        access_log=AccessLog(enabled=False),
        metrics=RequestMetrics(),
        cache_closing=cache_closing,
    )


GOAL = b"GET /machine/?comp=goalstate HTTP/1.1\r\nHost: x\r\nx-ms-version: 2012-11-30\r\n"


def _body(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


def test_closing_requests_are_served_from_the_cache_with_their_own_bytes() -> None:
    plane, fleet = CountingPlane(), LiveInventory([vm_spec("vm-a")])
    server = _server(plane, fleet, cache_closing=True)
    closing = [send(server, GOAL + b"Connection: close\r\n\r\n").written for _ in range(3)]
    assert plane.rendered == 1  # rendered once, then the cached bytes
    assert all(b"Connection: close" in raw and b"<Incarnation>1" in raw for raw in closing)
    kept = send(server, GOAL + b"\r\n").written
    assert b"Connection: close" not in kept and _body(kept) == _body(closing[0])
    assert plane.rendered == 2  # its own entry
    send(server, GOAL + b"\r\n")
    assert plane.rendered == 2
    fleet.replace([vm_spec("vm-a", location="elsewhere")])  # a new revision: rendered anew
    send(server, GOAL + b"Connection: close\r\n\r\n")
    assert plane.rendered == 3


def test_without_the_flag_closing_requests_are_rendered_each_time() -> None:
    plane = CountingPlane()
    server = _server(plane, LiveInventory([vm_spec("vm-a")]), cache_closing=False)
    for _ in range(2):
        send(server, GOAL + b"Connection: close\r\n\r\n")
    assert plane.rendered == 2
    assert not metadata_server().cache_closing  # the metadata listener's default
