"""What the listener's shortcuts must not change: keep-alive decided without the version
string, header facts noted as headers arrive, methods named without decoding."""

from __future__ import annotations

import re

import pytest

from openimds.core.throttle import RateLimiter
from openimds.web.metadata.protocol import MetadataServer
from tests.support.listener import connect, metadata_server

DOC = "/metadata/instance?api-version=2021-02-01"
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def _server(rate: float = 0) -> MetadataServer:
    return metadata_server(limiters={"imds": RateLimiter(rate), "identity": RateLimiter(20)})


def _statuses(raw: bytes) -> list[int]:
    """Status codes of the answers in order (answers follow each other's bodies directly)."""
    return [int(code) for code in STATUS.findall(raw)]


@pytest.mark.parametrize(
    "connection",
    [
        "",
        "Connection: keep-alive\r\n",
        "Proxy-Connection: keep-alive\r\n",
        "connection: Keep-Alive\r\n",
    ],
)
def test_http10_is_answered_and_closed_whatever_it_asks(connection: str) -> None:
    proto, transport = connect(_server())
    proto.data_received(
        f"GET {DOC} HTTP/1.0\r\nMetadata: true\r\n{connection}\r\n".encode()
        + f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\n\r\n".encode()
    )
    assert _statuses(transport.written) == [200]  # the pipelined second request is not read
    assert b"Connection: close\r\n" in transport.written
    assert transport.finished


@pytest.mark.parametrize("connection", ["", "Connection: keep-alive\r\n"])
def test_http11_stays_open_with_or_without_a_connection_header(connection: str) -> None:
    proto, transport = connect(_server())
    request = f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\n{connection}\r\n".encode()
    proto.data_received(request * 3)
    assert _statuses(transport.written) == [200, 200, 200]
    assert b"Connection: close" not in transport.written
    assert not transport.finished


def test_http11_connection_close_is_honoured() -> None:
    proto, transport = connect(_server())
    proto.data_received(
        f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\nConnection: close\r\n\r\n".encode()
    )
    assert _statuses(transport.written) == [200]
    assert transport.finished


def test_header_facts_do_not_leak_into_the_next_request() -> None:
    server = _server()
    proto, transport = connect(server)
    proto.data_received(
        f"GET {DOC} HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nMetadata: true\r\n\r\n".encode()
        + f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\n\r\n".encode()
        + f"GET {DOC} HTTP/1.1\r\nMetadata: false\r\n\r\n".encode()
        + f"GET {DOC} HTTP/1.1\r\nMETADATA: True\r\n\r\n".encode()
    )
    assert _statuses(transport.written) == [400, 200, 400, 200]
    assert not transport.finished


def test_a_second_metadata_header_bypasses_the_cache_in_either_order() -> None:
    server = _server()
    for first, second in (("true", "false"), ("false", "true")):
        proto, transport = connect(server)
        headers = f"Metadata: {first}\r\nMetadata: {second}\r\n"
        proto.data_received(f"GET {DOC} HTTP/1.1\r\n{headers}\r\n".encode() * 2)
        # The core reads the first Metadata header; the cache must not answer otherwise.
        expected = 200 if first == "true" else 400
        assert _statuses(transport.written) == [expected, expected]
        # ... nor remember an answer for a plain request that it did not give.
        for single, status in (("true", 200), ("false", 400)):
            proto, transport = connect(server)
            proto.data_received(f"GET {DOC} HTTP/1.1\r\nMetadata: {single}\r\n\r\n".encode())
            assert _statuses(transport.written) == [status]


def test_declared_oversized_body_is_refused_after_the_other_headers() -> None:
    proto, transport = connect(_server())
    proto.data_received(
        b"POST /metadata/scheduledevents HTTP/1.1\r\nContent-Length: 999999\r\n"
        b"Metadata: true\r\n\r\n"
    )
    assert _statuses(transport.written) == [413]
    assert transport.finished


@pytest.mark.parametrize("method", ["DELETE", "PROPFIND", "PATCH"])
def test_methods_are_named_in_the_answer(method: str) -> None:
    proto, transport = connect(_server())
    proto.data_received(f"{method} {DOC} HTTP/1.1\r\nMetadata: true\r\n\r\n".encode())
    assert _statuses(transport.written) == [405]
    assert f'Method = \\"{method}\\"'.encode() in transport.written


def test_budgets_still_apply_when_another_route_has_none() -> None:
    proto, transport = connect(_server(rate=1))
    proto.data_received(f"GET {DOC} HTTP/1.1\r\nMetadata: true\r\n\r\n".encode() * 3)
    assert _statuses(transport.written) == [200, 429, 429]
