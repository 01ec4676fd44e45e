"""What every connection of the metadata listener shares: the dispatcher and inventory,
budgets, request hooks, the per-VM cache of finished responses (`wire.Cached`), metrics,
the access log, the Date value (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING

from openimds.core.caller import Callers, SignedCallers
from openimds.core.dispatch import Dispatcher
from openimds.core.errors import ImdsError, TooManyRequests, error_response
from openimds.core.http import Response
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.web.access_log import AccessLog
from openimds.web.metadata.hooks import HookedRequest, RequestHook, Takeover, is_on, watch
from openimds.web.metadata.request_ring import RequestRing
from openimds.web.metadata.wire import Cached, encode
from openimds.web.metrics import RequestMetrics

if TYPE_CHECKING:
    from openimds.web.metadata.protocol import MetadataProtocol

# Headers whose facts the listener gathers as they arrive (protocol._note).
NOTED_HEADERS = frozenset(
    (
        b"metadata",
        b"x-forwarded-for",
        b"content-length",
        b"expect",
        b"connection",
        b"proxy-connection",
    )
)
IDLE_TIMEOUT = 60.0  # seconds a connection may go without completing a request
HEAD_TIMEOUT = 10.0  # seconds from the first byte of a request to the end of its head
MAX_CONNECTIONS = 16384  # open connections per listener
MAX_PER_SOURCE = 4096  # open connections per source address; 0: no such cap
CACHE_ENTRIES = 1024  # rendered responses kept per VM revision
TICK_SLICE = 256  # connections checked per step of a tick (about 0.1 ms)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may wait and how many may be open (docs/http.md, limits)."""

    idle_timeout: float = IDLE_TIMEOUT
    head_timeout: float = HEAD_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    max_per_source: int = MAX_PER_SOURCE


EffectsSink = Callable[[VmSnapshot, tuple[object, ...]], None]


class VmCache:
    __slots__ = ("entries", "revision")

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.entries: dict[tuple[bytes, int], Cached] = {}


class MetadataServer:
    """Shared state of all connections: the dispatcher, inventory, limits, caches, metrics."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        inventory: Callers,
        limiters: dict[str, RateLimiter],
        *,
        server_header: str,
        access_log: AccessLog,
        metrics: RequestMetrics,
        effects: EffectsSink | None = None,
        limits: ConnectionLimits = ConnectionLimits(),
        hooks: Sequence[RequestHook] = (),
        byte_cache: bool = True,
        proxy: SignedCallers | None = None,
        journal: RequestRing | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dispatcher = dispatcher
        # Set with a proxy secret: callers are resolved through it, and its headers are
        # gathered; without it they are never looked at.
        self.proxy = proxy
        self.noted_headers = NOTED_HEADERS | (proxy.headers if proxy is not None else frozenset())
        # Off for a token source's listener: its answers depend on secret headers, which
        # the cache key does not hold.
        self.byte_cache = byte_cache
        self.inventory = inventory
        # Route name -> its own budget ("identity"); every other route shares "imds".
        self.limiters = limiters
        self.any_limit = any(lim.enabled for lim in limiters.values())
        self.access_log = access_log
        self.metrics = metrics
        self.effects = effects
        # Only hooks that are on are called; the list is updated in place when a hook's
        # switch flips, so the listener's test stays `if server.hooks`.
        self.registered_hooks = tuple(hooks)
        self.hooks: list[RequestHook] = []
        self.refresh_hooks()
        for hook in self.registered_hooks:
            watch(hook, self.refresh_hooks)
        # The request journal (None: off): what each VM asked, for tests and operators.
        self.journal = journal
        # The `now` handed to the core (the runtime's clock: a test may advance it).
        self.clock = clock
        self.idle_ticks = max(1, round(limits.idle_timeout))
        self.head_ticks = max(1, round(limits.head_timeout))
        self.max_connections = limits.max_connections
        self.max_per_source = limits.max_per_source or limits.max_connections
        self.per_source: dict[str, int] = {}
        self.server_token = b"Server: " + server_header.encode("latin-1") + b"\r\n"
        self.date = b""
        self.connections: set[MetadataProtocol] = set()
        # Each endpoint words its 429 in its own shape (identity: error/error_description);
        # the answer is counted under the endpoint's route with status 429.
        self.throttle_errors: dict[str, ImdsError] = {"unknown": TooManyRequests()}
        for endpoint in dispatcher.endpoints:
            self.throttle_errors[endpoint.name] = endpoint.own_error(TooManyRequests())
        self.throttled = {
            name: self.encode(error_response(error), name, close=False)
            for name, error in self.throttle_errors.items()
        }
        self._caches: dict[str, VmCache] = {}
        self.tick()

    def tick(self) -> None:
        """Once a second: refresh the Date value, write the access log, drop idle peers."""
        for _ in self.tick_in_slices():
            pass

    def tick_in_slices(self) -> Iterator[None]:
        """`tick`, pausing after every TICK_SLICE connections: the event loop serves
        requests between slices, so ten thousand held connections never stall an answer
        for the milliseconds one pass over all of them takes."""
        now = time.time()
        self.date = formatdate(now, usegmt=True).encode()
        self.access_log.stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.access_log.flush()
        connections = list(self.connections)
        for start in range(0, len(connections), TICK_SLICE):
            for conn in connections[start : start + TICK_SLICE]:
                conn.idle_tick()
            yield

    def admit(self, peer: str) -> bool:
        """Count a new connection from `peer` in, or say it is one too many."""
        held = self.per_source.get(peer, 0)
        if held >= self.max_per_source or len(self.connections) >= self.max_connections:
            self.metrics.refused_connections += 1
            return False
        self.per_source[peer] = held + 1
        return True

    def release(self, peer: str) -> None:
        held = self.per_source.pop(peer, 1) - 1
        if held > 0:
            self.per_source[peer] = held

    def cache_for(self, vm: VmSnapshot) -> VmCache:
        cache = self._caches.get(vm.id)
        if cache is None or cache.revision != vm.revision:
            cache = VmCache(vm.revision)
            self._caches[vm.id] = cache
        return cache

    def drop_cached(self, vm: VmSnapshot) -> None:
        """Forget every finished answer of a VM (its state changed outside its revision)."""
        self._caches.pop(vm.id, None)

    def refresh_hooks(self) -> None:
        self.hooks[:] = [hook for hook in self.registered_hooks if is_on(hook)]

    def take_over(self, request: HookedRequest) -> Takeover | None:
        """The first hook's verdict on a request, if any hook takes it over."""
        for hook in self.hooks:
            verdict = hook(request)
            if verdict is not None:
                return verdict
        return None

    def encode(self, response: Response, route: str, close: bool) -> Cached:
        return encode(response, route, close, self.server_token)
