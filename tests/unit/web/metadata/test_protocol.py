"""MetadataProtocol details that are easiest to see without a socket: throttle shapes,
what gets counted, idle connections and slow request heads closed by ticks rather than by
the wall clock, the connection caps."""

from __future__ import annotations

import io
import json
from typing import ClassVar

import pytest

from openimds.core.app import build_dispatcher
from openimds.core.endpoint import BaseEndpoint
from openimds.core.errors import ImdsError, TooManyRequests
from openimds.core.http import Request, Response
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.web.access_log import AccessLog
from openimds.web.metadata.protocol import ConnectionLimits, MetadataServer
from tests.support.listener import connect, metadata_server, send


class Busy(ImdsError):
    status = 429

    def payload(self) -> dict[str, object]:
        return {"error": "busy", "error_description": "own shape"}


class Custom(BaseEndpoint):
    name: ClassVar[str] = "custom"

    def own_error(self, error: ImdsError) -> ImdsError:
        return Busy() if isinstance(error, TooManyRequests) else error

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(200, b'{"ok":true}')


def _server(rate: float, sink: io.StringIO | None = None) -> MetadataServer:
    return metadata_server(
        dispatcher=build_dispatcher([("/metadata/custom", Custom())]),
        limiters={"imds": RateLimiter(rate), "custom": RateLimiter(rate)},
        access_log=AccessLog(sink, enabled=sink is not None),
    )


def _bodies(raw: bytes) -> list[tuple[int, bytes]]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        out.append((int(head.split(b" ")[1]), rest[:length]))
        raw = rest[length:]
    return out


def test_throttled_answer_keeps_the_endpoints_shape_with_or_without_keep_alive() -> None:
    server = _server(rate=1)
    ask = b"GET /metadata/custom HTTP/1.1\r\nMetadata: true\r\n\r\n"
    answers = _bodies(send(server, ask * 2).written)
    assert [status for status, _ in answers] == [200, 429]
    closing = send(server, ask.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    status, body = _bodies(closing.written)[0]
    assert status == 429
    assert (
        json.loads(body)
        == json.loads(answers[1][1])
        == {
            "error": "busy",
            "error_description": "own shape",
        }
    )
    assert b"Connection: close" in closing.written
    assert server.metrics.requests[("custom", 429, "vm-a")] == 2
    assert server.metrics.throttled == 2


def test_budgets_are_shared_by_the_general_routes_only() -> None:
    server = _server(rate=1)
    ask = b"GET /metadata/versions HTTP/1.1\r\nMetadata: true\r\n\r\n"
    custom = b"GET /metadata/custom HTTP/1.1\r\nMetadata: true\r\n\r\n"
    statuses = [s for s, _ in _bodies(send(server, ask * 2 + custom).written)]
    assert statuses == [200, 429, 200]


def test_malformed_requests_are_counted_and_logged() -> None:
    sink = io.StringIO()
    server = _server(rate=0, sink=sink)
    transport = send(server, b"GET /x?secret=1 HTTP/1.1\r\nBad Header: y\r\n\r\n")
    assert transport.finished
    assert server.metrics.requests[("malformed", 400, "-")] == 1
    server.access_log.flush()
    line = json.loads(sink.getvalue())
    assert (line["method"], line["path"], line["status"], line["vm"]) == ("GET", "/x", 400, "-")
    assert "secret" not in sink.getvalue()


def test_nothing_is_answered_after_the_connection_is_closing() -> None:
    server = _server(rate=0)
    ask = b"GET /metadata/versions HTTP/1.1\r\nMetadata: true\r\n"
    transport = send(server, ask + b"Connection: close\r\n\r\n" + ask + b"\r\n")
    assert len(_bodies(transport.written)) == 1
    assert transport.finished


# -- idle connections: MetadataServer.tick() runs once a second and counts for each ----------
LEAF = b"GET /metadata/instance/compute/name?api-version=2021-02-01&format=text HTTP/1.1\r\n"
ASK = LEAF + b"Metadata: true\r\n\r\n"


@pytest.mark.parametrize(("idle_timeout", "ticks"), [(0.4, 1), (1, 1), (2.6, 3), (60, 60)])
def test_the_idle_timeout_is_counted_in_whole_ticks(idle_timeout: float, ticks: int) -> None:
    assert metadata_server(idle_timeout=idle_timeout).idle_ticks == ticks


@pytest.mark.parametrize("idle_timeout", [1, 3])
def test_an_idle_connection_lasts_idle_timeout_ticks_and_goes_at_the_next(
    idle_timeout: int,
) -> None:
    """Closed on the first tick after `idle_timeout` whole ticks without a request: between
    idle_timeout and idle_timeout + 1 seconds after the last one."""
    server = metadata_server(idle_timeout=idle_timeout)
    proto, transport = connect(server)
    proto.data_received(ASK)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    for _ in range(idle_timeout):
        server.tick()
        assert not transport.closed
    server.tick()
    assert transport.closed
    assert not transport.eof  # hung up, not the lingering close after a last answer


def test_a_connection_that_never_sends_anything_goes_too() -> None:
    server = metadata_server(idle_timeout=2)
    _, transport = connect(server)
    server.tick()
    server.tick()
    assert not transport.closed
    server.tick()
    assert transport.closed


def test_each_completed_request_restarts_the_count() -> None:
    server = metadata_server(idle_timeout=2)
    busy, busy_transport = connect(server)
    idle, idle_transport = connect(server)
    idle.data_received(ASK)
    for _ in range(10):  # a request between every two ticks: never idle for two
        busy.data_received(ASK)
        server.tick()
        server.tick()
        assert not busy_transport.closed
    assert busy_transport.written.count(b"HTTP/1.1 200 OK\r\n") == 10
    assert idle_transport.closed  # gone on the third tick, while the other stayed


def test_half_a_request_is_not_activity() -> None:
    server = metadata_server(idle_timeout=2)
    proto, transport = connect(server)
    proto.data_received(ASK)
    server.tick()
    proto.data_received(LEAF)  # the head goes on forever, or stops here
    server.tick()
    assert not transport.closed
    server.tick()  # the third tick since the last complete request
    assert transport.closed
    assert transport.written.count(b"HTTP/1.1 ") == 1  # the unfinished request is not answered


# -- request-head timeout: counted in ticks from the head's first byte -----------------------
def test_a_head_that_does_not_arrive_in_time_gets_408_and_is_closed() -> None:
    server = metadata_server(limits=ConnectionLimits(head_timeout=3, idle_timeout=60))
    proto, transport = connect(server)
    proto.data_received(LEAF)
    for line in (b"Metadata: true\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
        server.tick()  # one header line a second: steady, but never finished
        proto.data_received(line)
        assert not transport.finished
    server.tick()
    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"did not arrive in time" in transport.written
    assert transport.finished
    assert server.metrics.head_timeouts == 1
    assert server.metrics.requests[("timeout", 408, "-")] == 1


def test_the_head_clock_starts_with_each_request_not_the_connection() -> None:
    server = metadata_server(limits=ConnectionLimits(head_timeout=2, idle_timeout=60))
    proto, transport = connect(server)
    for _ in range(5):  # sitting idle between requests is the idle timeout's business
        server.tick()
    proto.data_received(ASK)
    server.tick()
    proto.data_received(LEAF)
    server.tick()
    server.tick()
    assert not transport.finished  # two whole ticks: still in time
    proto.data_received(b"Metadata: true\r\n\r\n")
    assert transport.written.count(b"HTTP/1.1 200 OK\r\n") == 2
    for _ in range(5):
        server.tick()
    assert not transport.finished


# -- connection caps: over them a connection is reset unread; the others go on -------------
def test_connections_over_the_cap_are_reset_and_the_open_ones_served() -> None:
    server = metadata_server(limits=ConnectionLimits(max_connections=3, max_per_source=0))
    held = [connect(server, peer=f"10.0.0.{n}") for n in range(3)]
    proto, refused = connect(server, peer="10.0.0.9")
    assert refused.closed and not refused.written
    proto.data_received(ASK)  # bytes that raced the reset are ignored
    assert not refused.written
    proto.connection_lost(None)
    assert server.metrics.refused_connections == 1
    for first, transport in held:
        first.data_received(ASK)
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    held[0][0].connection_lost(None)  # one goes: room for one more
    _, admitted = connect(server, peer="10.0.0.9")
    assert not admitted.closed


def test_the_per_source_cap_leaves_room_for_other_sources() -> None:
    server = metadata_server(limits=ConnectionLimits(max_connections=100, max_per_source=2))
    first = [connect(server, peer="10.0.0.1") for _ in range(2)]
    assert connect(server, peer="10.0.0.1")[1].closed
    assert not connect(server, peer="10.0.0.2")[1].closed
    first[0][0].connection_lost(None)
    assert not connect(server, peer="10.0.0.1")[1].closed
    assert server.per_source == {"10.0.0.1": 2, "10.0.0.2": 1}
