"""The metadata listener without sockets: a fake transport that records what the protocol
writes, and a MetadataServer with test defaults (one VM, no budgets, no access log)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from openimds.core.app import build_dispatcher
from openimds.core.caller import SignedCallers
from openimds.core.dispatch import Dispatcher
from openimds.core.throttle import RateLimiter
from openimds.inventory.live import LiveInventory
from openimds.web.access_log import AccessLog
from openimds.web.metadata.protocol import (
    IDLE_TIMEOUT,
    ConnectionLimits,
    MetadataProtocol,
    MetadataServer,
)
from openimds.web.metrics import RequestMetrics
from tests.support.imds import vm_spec


class FakeTransport(asyncio.Transport):
    """Collects written bytes; closing, aborting and half-closing are only noted."""

    def __init__(self, peer: str = "127.0.0.1") -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closed = False
        self.eof = False

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    @property
    def finished(self) -> bool:
        """Closed, or half-closed after the last answer (a lingering close)."""
        return self.closed or self.eof

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.peer, 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def metadata_server(
    inventory: LiveInventory | None = None,
    *,
    dispatcher: Dispatcher | None = None,
    limiters: Mapping[str, RateLimiter] | None = None,
    access_log: AccessLog | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    proxy: SignedCallers | None = None,
    limits: ConnectionLimits | None = None,
) -> MetadataServer:
    """A MetadataServer as `serve` builds one; by default the standard dispatcher, one VM
    named vm-a, no budget and no access log."""
    return MetadataServer(
        build_dispatcher() if dispatcher is None else dispatcher,
        LiveInventory([vm_spec("vm-a")]) if inventory is None else inventory,
        {"imds": RateLimiter(0)} if limiters is None else dict(limiters),
        server_header="IMDS/test",
        access_log=AccessLog(enabled=False) if access_log is None else access_log,
        metrics=RequestMetrics(),
        limits=limits or ConnectionLimits(idle_timeout=idle_timeout),
        proxy=proxy,
    )


def connect(
    server: MetadataServer, peer: str = "127.0.0.1"
) -> tuple[MetadataProtocol, FakeTransport]:
    """A new connection from `peer`, made but nothing sent yet."""
    transport = FakeTransport(peer)
    proto = MetadataProtocol(server)
    proto.connection_made(transport)
    return proto, transport


def send(server: MetadataServer, data: bytes, peer: str = "127.0.0.1") -> FakeTransport:
    """`data` on a new connection; the transport holds the answers."""
    proto, transport = connect(server, peer)
    proto.data_received(data)
    return transport
