"""The metadata listener on the standard-library event loop (the fallback where uvloop is
missing), in-process over real loopback sockets."""

from __future__ import annotations

import asyncio
import re

from openimds.core.throttle import RateLimiter
from openimds.inventory.live import LiveInventory
from openimds.web.metadata.protocol import MetadataProtocol
from tests.support.imds import vm_spec
from tests.support.listener import metadata_server

LEAF = b"GET /metadata/instance/compute/name?api-version=2021-02-01&format=text HTTP/1.1\r\n"


async def _exchange(payload: bytes, *, rate: float = 0) -> bytes:
    server = metadata_server(
        LiveInventory([vm_spec("std-vm")]), limiters={"imds": RateLimiter(rate)}
    )
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: MetadataProtocol(server), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)  # until the server's FIN
        writer.close()
        return data
    finally:
        listener.close()
        for conn in list(server.connections):
            if conn.transport is not None:
                conn.transport.close()
        await listener.wait_closed()


def test_pipelined_requests_then_close_on_the_stdlib_loop() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    assert not type(loop).__module__.startswith("uvloop")  # asyncio.run uses the stdlib loop
    payload = (
        LEAF
        + b"Metadata: true\r\n\r\n"
        + LEAF
        + b"\r\n"
        + LEAF
        + b"Metadata: true\r\nConnection: close\r\n\r\n"
        + LEAF
        + b"Metadata: true\r\n\r\n"  # after close: never answered
    )
    data = asyncio.run(_exchange(payload))
    assert data.count(b"HTTP/1.1 ") == 3
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"HTTP/1.1 400 Bad Request\r\n" in data
    assert data.endswith(b"std-vm")
    assert data.count(b"Connection: close\r\n") == 1


def test_malformed_request_on_the_stdlib_loop() -> None:
    data = asyncio.run(_exchange(b"NOT HTTP AT ALL\r\n\r\n" + b"x" * 100_000))
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert data.endswith(b'{"error":"Bad request. Malformed HTTP request"}')


def test_throttling_on_the_stdlib_loop() -> None:
    payload = (LEAF + b"Metadata: true\r\n\r\n") * 3 + LEAF + b"Connection: close\r\n\r\n"
    data = asyncio.run(_exchange(payload, rate=2))
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"200", b"200", b"429", b"429"]
