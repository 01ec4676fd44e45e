"""What every connection of the metadata listener shares: the service and inventory,
budgets, the per-VM cache of finished responses, metrics, the access log, the Date value.

A finished response is kept as bytes split around the Date value, so a cache hit is one
join and one write (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

from openimds.core.errors import ImdsError, TooManyRequests, error_response
from openimds.core.http import Response
from openimds.core.inventory import VmSnapshot
from openimds.core.service import MetadataService
from openimds.core.throttle import RateLimiter
from openimds.fleet import Fleet
from openimds.web.access_log import AccessLog
from openimds.web.metrics import RequestMetrics

if TYPE_CHECKING:
    from openimds.web.metadata_server import MetadataProtocol

IDLE_TIMEOUT = 60.0  # seconds a connection may go without completing a request
CACHE_ENTRIES = 1024  # rendered responses kept per VM revision

EffectsSink = Callable[[VmSnapshot, tuple[object, ...]], None]


@dataclass(slots=True)
class Cached:
    head: bytes  # status line and headers up to the Date value
    tail: bytes  # end of headers and the body
    route: str
    status: int
    valid_until: float | None = None  # epoch seconds; None: as long as the VM revision


class VmCache:
    __slots__ = ("entries", "revision")

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.entries: dict[tuple[bytes, int], Cached] = {}


class MetadataServer:
    """Shared state of all connections: the service, inventory, limits, caches, metrics."""

    def __init__(
        self,
        service: MetadataService,
        fleet: Fleet,
        limiters: dict[str, RateLimiter],
        *,
        server_header: str,
        access_log: AccessLog,
        metrics: RequestMetrics,
        effects: EffectsSink | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.service = service
        self.fleet = fleet
        # Route name -> its own budget ("identity"); every other route shares "imds".
        self.limiters = limiters
        self.any_limit = any(lim.enabled for lim in limiters.values())
        self.access_log = access_log
        self.metrics = metrics
        self.effects = effects
        self.idle_ticks = max(1, round(idle_timeout))
        self.server_token = b"Server: " + server_header.encode("latin-1") + b"\r\n"
        self.date = b""
        self.connections: set[MetadataProtocol] = set()
        # Each endpoint words its 429 in its own shape (identity: error/error_description);
        # the answer is counted under the endpoint's route with status 429.
        self.throttle_errors: dict[str, ImdsError] = {"unknown": TooManyRequests()}
        for endpoint in service.endpoints:
            self.throttle_errors[endpoint.name] = endpoint.own_error(TooManyRequests())
        self.throttled = {
            name: self.encode(error_response(error), name, close=False)
            for name, error in self.throttle_errors.items()
        }
        self._caches: dict[str, VmCache] = {}
        self.tick()

    def tick(self) -> None:
        """Once a second: refresh the Date value, write the access log, drop idle peers."""
        now = time.time()
        self.date = formatdate(now, usegmt=True).encode()
        self.access_log.stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.access_log.flush()
        for conn in list(self.connections):
            conn.idle_tick()

    def cache_for(self, vm: VmSnapshot) -> VmCache:
        cache = self._caches.get(vm.id)
        if cache is None or cache.revision != vm.revision:
            cache = VmCache(vm.revision)
            self._caches[vm.id] = cache
        return cache

    def drop_cached(self, vm: VmSnapshot) -> None:
        """Forget every finished answer of a VM (its state changed outside its revision)."""
        self._caches.pop(vm.id, None)

    def encode(self, response: Response, route: str, close: bool) -> Cached:
        reason = HTTPStatus(response.status).phrase.encode()
        extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in response.headers)
        head = b"".join(
            (
                b"HTTP/1.1 %d %s\r\n" % (response.status, reason),
                b"Content-Type: ",
                response.content_type.encode(),
                b"\r\n",
                b"Content-Length: %d\r\n" % len(response.body),
                extra,
                b"Connection: close\r\n" if close else b"",
                self.server_token,
                b"Date: ",
            )
        )
        return Cached(
            head, b"\r\n\r\n" + response.body, route, response.status, response.valid_until
        )
