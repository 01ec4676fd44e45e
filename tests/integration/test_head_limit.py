"""An unfinished request head is refused with 431 once it passes the head limit
(docs/http.md, limits), however the client's bytes are cut into writes: the bytes of the
chunk that started the head count too, and complete requests before it in that chunk do
not."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.rawhttp import RawConnection, get
from tests.support.server import RunningServer

START = b"GET /metadata/versions HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nX-Big: "


def _send_in(conn: RawConnection, data: bytes, writes: int) -> None:
    """`data` in `writes` writes that reach the server as separate reads."""
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    size = -(-len(data) // writes)
    for offset in range(0, len(data), size):
        conn.send(data[offset : offset + size])
        time.sleep(0.05)


@pytest.mark.parametrize("writes", [1, 2, 4])
@pytest.mark.parametrize("value_bytes", [30_000, 40_000, 100_000])
def test_unfinished_head_gets_431_promptly(
    live: RunningServer, value_bytes: int, writes: int
) -> None:
    with RawConnection(live.metadata_url, timeout=5.0) as conn:
        _send_in(conn, START + b"a" * value_bytes, writes)  # no CRLF: the line never ends
        conn.sock.settimeout(1.0)
        started = time.monotonic()
        response = conn.read_response()
        assert response.status == 431
        assert time.monotonic() - started < 1.0
        assert conn.is_closed_by_peer()


def test_complete_requests_before_an_unfinished_head_are_not_counted(
    live: RunningServer,
) -> None:
    batch = get("/metadata/versions") * 400  # over the limit in one write, every one complete
    with RawConnection(live.metadata_url) as conn:
        _send_in(conn, batch + START + b"a" * 100, 1)
        conn.send(b"\r\n\r\n")
        answers = [conn.read_response() for _ in range(401)]
    assert len(batch) > 25 * 1024
    assert {a.status for a in answers} == {200}
