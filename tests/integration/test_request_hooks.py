"""Request hooks on the metadata listener, in-process over real loopback sockets: a hook
acts before the byte cache, its answers are never cached and never hide cached ones."""

from __future__ import annotations

import asyncio
import re

from openimds.config.vm_model import VmSpec
from openimds.core.app import build_dispatcher
from openimds.core.http import Response
from openimds.core.throttle import RateLimiter
from openimds.inventory.live import LiveInventory
from openimds.web.access_log import AccessLog
from openimds.web.metadata.hooks import HookedRequest, Takeover
from openimds.web.metadata.protocol import MetadataProtocol
from openimds.web.metadata.state import MetadataServer
from openimds.web.metrics import RequestMetrics

LEAF = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


class Switch:
    """A hook that takes over requests for its path while it is on."""

    def __init__(self, path: str, *, close: bool = False) -> None:
        self.path = path
        self.close = close
        self.on = False
        self.seen: list[HookedRequest] = []

    def __call__(self, request: HookedRequest) -> Takeover | None:
        self.seen.append(request)
        if not self.on or request.path != self.path:
            return None
        if self.close:
            return Takeover("hang-up", close=True)
        return Takeover("gone", response=Response(410, b'{"error":"updating"}'))


def _server(*hooks: Switch) -> MetadataServer:
    return MetadataServer(
        build_dispatcher(),
        LiveInventory([VmSpec.model_validate({"instance": {"compute": {"name": "hooked-vm"}}})]),
        {"imds": RateLimiter(0)},
        server_header="IMDS/test",
        access_log=AccessLog(enabled=False),
        metrics=RequestMetrics(),
        hooks=hooks,
    )


async def _get(port: int) -> bytes:
    """One keep-alive GET on a fresh connection; b"" when the server hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {LEAF} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    body = await reader.readexactly(length)
    writer.close()
    return head + body


async def _hung_up(port: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {LEAF} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data == b""


async def _serve(server: MetadataServer) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: MetadataProtocol(server), "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1]


def test_a_hook_answers_before_the_cache_and_its_answer_is_never_cached() -> None:
    switch = Switch("/metadata/instance/compute/name")
    server = _server(switch)

    async def scenario() -> list[bytes]:
        listener, port = await _serve(server)
        try:
            first = await _get(port)  # cached by the listener
            switch.on = True
            faulted = [await _get(port), await _get(port)]
            switch.on = False
            after = await _get(port)
            return [first, *faulted, after]
        finally:
            listener.close()

    first, faulted_1, faulted_2, after = asyncio.run(scenario())
    assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"hooked-vm")
    # A hook sees requests whose answer is cached: it runs before the cache.
    for faulted in (faulted_1, faulted_2):
        assert faulted.startswith(b"HTTP/1.1 410 Gone") and faulted.endswith(b'updating"}')
    # Once the hook lets go, the cached answer is served as before: not poisoned.
    assert after.startswith(b"HTTP/1.1 200 OK") and after.endswith(b"hooked-vm")
    assert len(switch.seen) == 4
    assert switch.seen[0].vm is not None and switch.seen[0].vm.name == "hooked-vm"
    assert switch.seen[0].target == LEAF
    counted = {(route, status) for route, status, _ in server.metrics.requests}
    assert ("hook:gone", 410) in counted


def test_a_hook_can_hang_up_without_an_answer() -> None:
    switch = Switch("/metadata/instance/compute/name", close=True)
    server = _server(switch)

    async def scenario() -> tuple[bool, bytes]:
        listener, port = await _serve(server)
        try:
            switch.on = True
            hung = await _hung_up(port)
            switch.on = False
            return hung, await _get(port)
        finally:
            listener.close()

    hung, after = asyncio.run(scenario())
    assert hung
    assert after.startswith(b"HTTP/1.1 200 OK")
