"""MetadataProtocol details that are easiest to see without a socket: throttle shapes,
what gets counted."""

from __future__ import annotations

import io
import json
from typing import ClassVar

from openimds.core.app import build_service
from openimds.core.endpoint import BaseEndpoint
from openimds.core.errors import ImdsError, TooManyRequests
from openimds.core.http import Request, Response
from openimds.core.inventory import VmSnapshot
from openimds.core.throttle import RateLimiter
from openimds.web.access_log import AccessLog
from openimds.web.metadata.protocol import MetadataServer
from tests.support.listener import metadata_server, send


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
        service=build_service([("/metadata/custom", Custom())]),
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
