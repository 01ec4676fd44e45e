"""HTTP/1.1 on the metadata listener, byte by byte over raw sockets."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
from pathlib import Path

import pytest
import uvloop

from openimds.inventory.live import LiveInventory
from openimds.web.metadata.protocol import MetadataProtocol
from tests.support.imds import vm_spec
from tests.support.listener import metadata_server
from tests.support.rawhttp import RawConnection, exchange, get
from tests.support.server import RunningServer

DOC = "/metadata/instance?api-version=2021-02-01"
LEAF = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


def test_keep_alive_serves_many_requests_on_one_connection(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        for _ in range(50):
            conn.send(get(LEAF))
            response = conn.read_response()
            assert response.status == 200
            assert response.body == b"demo-vm"
            assert response.header("connection") is None


def test_pipelined_requests_are_answered_in_order(live: RunningServer) -> None:
    paths = [LEAF, "/metadata/versions", "/nope?api-version=2021-02-01", DOC, LEAF]
    with RawConnection(live.metadata_url) as conn:
        conn.send(b"".join(get(p) for p in paths))
        statuses = [conn.read_response() for _ in paths]
    assert [r.status for r in statuses] == [200, 200, 404, 200, 200]
    assert statuses[0].body == statuses[4].body == b"demo-vm"
    assert b"apiVersions" in statuses[1].body
    assert b'"compute"' in statuses[3].body


def test_connection_close_is_honoured_and_later_pipelined_requests_ignored(
    live: RunningServer,
) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(get(LEAF, extra="Connection: close\r\n") + get(LEAF))
        response = conn.read_response()
        assert response.status == 200
        assert response.header("connection") == "close"
        assert conn.is_closed_by_peer()
        assert conn.buffer == b""  # the second request got no answer


def test_http_1_0_is_answered_and_closed(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(get(LEAF, version="1.0"))
        response = conn.read_response()
        assert response.status == 200
        assert response.body == b"demo-vm"
        assert response.header("connection") == "close"
        assert conn.is_closed_by_peer()


def test_head_gets_405_without_a_body(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(b"HEAD " + DOC.encode() + b" HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n")
        response = conn.read_response(head=True)
        assert response.status == 405
        assert response.header("allow") == "GET"
        assert int(response.header("content-length") or 0) > 0
        # The connection is still usable and nothing (no body) precedes the next answer.
        conn.send(get(LEAF))
        follow = conn.read_response()
        assert follow.status == 200
        assert follow.body == b"demo-vm"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow(live: RunningServer, method: str) -> None:
    body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
    request = (
        f"{method} /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: x\r\n"
        f"Metadata: true\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    response = exchange(live.metadata_url, request)
    assert response.status == 405
    assert response.header("allow") == "GET"
    assert response.body == (
        b'{"error":"Http method isn\'t allowed: Path = \\"/metadata/instance\\", '
        b'Method = \\"' + method.encode() + b'\\""}'
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /metadata/versions HTTP/9.9\r\n\r\n",
        b"GET /metadata/versions HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"GET /metadata/versions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
    ],
)
def test_malformed_request_gets_400_and_the_connection_closed(
    live: RunningServer, request_bytes: bytes
) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(request_bytes)
        response = conn.read_response()
        assert response.status == 400
        assert response.header("connection") == "close"
        assert response.header("content-type") == "application/json; charset=utf-8"
        assert response.body == b'{"error":"Bad request. Malformed HTTP request"}'
        assert conn.is_closed_by_peer()


def test_upgrade_is_ignored_and_answered_once(live: RunningServer) -> None:
    request = get(LEAF, extra="Connection: Upgrade\r\nUpgrade: websocket\r\n")
    with RawConnection(live.metadata_url) as conn:
        conn.send(request)
        response = conn.read_response()
        # Served as a plain GET (the Upgrade is ignored), then the connection ends.
        assert response.status == 200
        assert response.body == b"demo-vm"
        assert conn.is_closed_by_peer()
        assert conn.buffer == b""  # exactly one answer


def _oversized_cases() -> list[tuple[bytes, int]]:
    long_url = b"GET /metadata/instance?x=" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    big_header = b"X-Big: " + b"b" * 40_000 + b"\r\n"
    return [
        (long_url, 414),
        (b"GET /metadata/versions HTTP/1.1\r\n" + many + b"\r\n", 431),
        (b"GET /metadata/versions HTTP/1.1\r\n" + big_header + b"\r\n", 431),
        (b"POST /metadata/instance HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413),
        (
            b"POST /metadata/instance HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"8000\r\n" + b"z" * 0x8000 + b"\r\n" for _ in range(3)),
            413,
        ),
    ]


@pytest.mark.parametrize(("request_bytes", "status"), _oversized_cases())
def test_oversized_requests_are_refused(
    live: RunningServer, request_bytes: bytes, status: int
) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(request_bytes)
        response = conn.read_response()
        assert response.status == status
        assert response.header("connection") == "close"
        assert conn.is_closed_by_peer()


def test_endless_header_line_sent_in_pieces_is_cut_off(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(b"GET /metadata/versions HTTP/1.1\r\nX-Endless: ")
        sent = 0
        while sent < 64_000_000 and not select.select([conn.sock], [], [], 0)[0]:
            try:
                conn.send(b"e" * 4096)
            except OSError:
                break  # hung up on us (after answering)
            sent += 4096
        response = conn.read_response()
        assert response.status == 431
        assert conn.is_closed_by_peer()
    assert sent < 32_000_000  # kernel socket buffers, not an endless read


def test_request_sent_slowly_in_many_pieces_is_answered(live: RunningServer) -> None:
    request = get(LEAF, extra="User-Agent: slow-client\r\n")
    with RawConnection(live.metadata_url) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(request), 3):
            conn.send(request[i : i + 3])
            time.sleep(0.002)
        response = conn.read_response()
    assert response.status == 200
    assert response.body == b"demo-vm"


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """One whole answer: the head, then as many body bytes as Content-Length says."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def _idle_connections_over_real_sockets() -> None:
    server = metadata_server(LiveInventory([vm_spec("idle-vm")]), idle_timeout=1)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: MetadataProtocol(server), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    ask = get(LEAF)
    try:
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        for reader, writer in ((idle_reader, idle_writer), (busy_reader, busy_writer)):
            writer.write(ask)
            assert (await _answer(reader)).endswith(b"idle-vm")
        server.tick()
        busy_writer.write(ask)  # a connection that keeps completing requests is not idle
        assert (await _answer(busy_reader)).endswith(b"idle-vm")
        server.tick()
        # The idle one is hung up on: the client reads EOF, the server forgets it.
        assert await asyncio.wait_for(idle_reader.read(), timeout=5) == b""
        async with asyncio.timeout(5):
            while len(server.connections) != 1:
                await asyncio.sleep(0.01)
        # Half a request is not activity: once the server holds it, two ticks and it goes.
        busy_writer.write(b"GET /metadata/versions HTTP/1.1\r\n")
        (busy,) = server.connections
        async with asyncio.timeout(5):
            while not busy.in_head:
                await asyncio.sleep(0.01)
        server.tick()
        server.tick()
        assert await asyncio.wait_for(busy_reader.read(), timeout=5) == b""
        for writer in (idle_writer, busy_writer):
            writer.close()
            await writer.wait_closed()
    finally:
        listener.close()
        await listener.wait_closed()


def test_idle_keep_alive_connections_are_closed_over_real_sockets() -> None:
    """When idle connections go is unit-tested tick by tick (tests/unit/web/metadata); here
    the close goes through a real transport on uvloop, as `serve` runs it: the client reads
    EOF and the server drops the connection, while a busy one stays open. The test calls
    tick() itself rather than waiting for the once-a-second ticker."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_idle_connections_over_real_sockets())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_does_not_grow_server_memory(live: RunningServer) -> None:
    before = _rss_kib(live.process.pid)
    burst = get(DOC) * 200
    with RawConnection(live.metadata_url) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.sock.setblocking(False)
        sent = 0
        stalled_since = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                # Whole requests only: a partial send continues where it stopped.
                sent += conn.sock.send(burst[sent % len(burst) :])
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break  # the server stopped reading us
                time.sleep(0.01)
            except OSError:
                break  # or dropped us
        growth = _rss_kib(live.process.pid) - before
    # The server read a bounded amount and buffered a bounded amount of answers.
    assert sent < 64 * 1024 * 1024
    assert growth < 48 * 1024, f"server grew by {growth} KiB after {sent} bytes"
    # And it still serves everyone else.
    assert exchange(live.metadata_url, get(LEAF)).body == b"demo-vm"
    assert os.path.exists(f"/proc/{live.process.pid}")


def test_connect_is_refused(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        response = conn.read_response()
        assert response.status == 400  # the request rules apply; it never tunnels
        assert conn.is_closed_by_peer()
        assert conn.buffer == b""


def test_large_pipelined_batch_split_mid_head_is_served(live: RunningServer) -> None:
    batch = get(LEAF) * 1000  # about 90 KiB of complete requests
    with RawConnection(live.metadata_url) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.send(batch[:50])  # the first request's head, unfinished
        time.sleep(0.05)
        conn.send(batch[50:])
        answers = [conn.read_response() for _ in range(1000)]
    assert {a.status for a in answers} == {200}
    assert {a.body for a in answers} == {b"demo-vm"}


def test_expect_100_continue_is_answered_before_the_body(live: RunningServer) -> None:
    with RawConnection(live.metadata_url) as conn:
        conn.send(
            b"POST /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: x\r\n"
            b"Metadata: true\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = conn.read_response(head=True)
        assert (interim.status, interim.reason) == (100, "Continue")
        conn.send(b"{}")
        final = conn.read_response()
        assert final.status == 405
    with RawConnection(live.metadata_url) as conn:
        # HTTP/1.0 clients never get an interim answer.
        conn.send(
            b"POST /metadata/instance HTTP/1.0\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n{}"
        )
        assert conn.read_response().status == 400


def test_absolute_form_request_target_is_served_by_its_path(live: RunningServer) -> None:
    # RFC 9112 3.2.2: servers accept "GET http://host/path"; only the path counts.
    response = exchange(live.metadata_url, get("http://169.254.169.254" + LEAF))
    assert response.status == 200
    assert response.body == b"demo-vm"
    bare = exchange(live.metadata_url, get("http://169.254.169.254"))
    assert bare.status == 400  # the root, without api-version: Azure's version error
