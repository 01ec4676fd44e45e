"""What every connection of the metadata listener shares, and the answering they share:
the dispatcher and inventory, budgets, request hooks, the per-VM cache of finished responses
(`wire.Cached`), metrics, the access log, the request journal, the Date value.

The hot path for a GET (`MetadataServer.answer`): resolve the caller's VM -> hooks (one
truth test with none on) -> look the raw target up in the VM's cache of finished
responses (valid for one VM revision) -> budget; the connection writes what it returns.
The core runs only on a miss; nothing on the path serialises JSON, touches the store or
takes a lock (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

from openimds.core.caller import Callers, SignedCallers
from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import Endpoint
from openimds.core.errors import (
    ImdsError,
    ProxyRefused,
    TooManyRequests,
    Unavailable,
    UnknownCaller,
    error_response,
)
from openimds.core.http import Request, Response
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.store import StoreError
from openimds.web.access_log import AccessLog
from openimds.web.metadata.hooks import HookedRequest, RequestHook, Takeover, is_on, watch
from openimds.web.metadata.request_ring import RequestRing
from openimds.web.metadata.wire import Cached, core_request, encode
from openimds.web.metrics import RequestMetrics

log = logging.getLogger("openimds.metadata")

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
TICK_SLICE = 256  # connections checked per step of a tick (docs/performance.md)
# A request's header state, the header fact in the cache key: `Metadata: true` or not;
# UNCACHEABLE (X-Forwarded-For, two Metadata headers) bypasses the cache.
METADATA, NO_METADATA, UNCACHEABLE = 1, 0, -1
CLOSING = 2  # a cache key's flag: the answer closes the connection


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may wait and how many may be open (docs/http.md, limits)."""

    idle_timeout: float = IDLE_TIMEOUT
    head_timeout: float = HEAD_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    max_per_source: int = MAX_PER_SOURCE


Headers = list[tuple[bytes, bytes]]
# What answering gives the connection: the bytes to write (None: a hook's verdict without
# an answer), the VM name for the log, and the hook's verdict if one took part (its delay,
# whether to hold or hang up).
Answer = tuple[Cached | None, str, Takeover | None]


class Connection(Protocol):
    """What the server needs of a connection: a tick once a second, and its transport
    (None once lost) to close it when the server stops."""

    transport: asyncio.Transport | None

    def idle_tick(self) -> None: ...


class VmCache:
    __slots__ = ("entries", "revision")

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.entries: dict[tuple[bytes, int], Cached] = {}


class MetadataServer:
    """Shared state of all connections: the dispatcher, callers, limits, caches, metrics."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        callers: Callers,
        limiters: dict[str, RateLimiter],
        *,
        server_header: str,
        access_log: AccessLog,
        metrics: RequestMetrics,
        limits: ConnectionLimits = ConnectionLimits(),
        hooks: Sequence[RequestHook] = (),
        byte_cache: bool = True,
        proxy: SignedCallers | None = None,
        request_ring: RequestRing | None = None,
        clock: Callable[[], float] = time.time,
        on_answer: Callable[[str, int, str], None] | None = None,
        cache_closing: bool = False,
    ) -> None:
        self.dispatcher = dispatcher
        # Set with a proxy secret: callers are resolved through it, and its headers are
        # gathered; without it they are never looked at.
        self.proxy = proxy
        self.noted_headers = NOTED_HEADERS | (proxy.headers if proxy is not None else frozenset())
        # Off for a token source's listener: its answers depend on secret headers, which
        # the cache key does not hold.
        self.byte_cache = byte_cache
        # Also cache answers that close the connection (keyed apart): the guest plane's,
        # whose agents send `Connection: close` on every request.
        self.cache_closing = cache_closing
        self.callers = callers
        # Route name -> its own budget ("identity"); every other route shares "imds".
        self.limiters = limiters
        self.any_limit = any(lim.enabled for lim in limiters.values())
        self.access_log = access_log
        self.metrics = metrics
        # Only hooks that are on are called; the list is updated in place when a hook's
        # switch flips, so the listener's test stays `if server.hooks`.
        self.registered_hooks = tuple(hooks)
        self.hooks: list[RequestHook] = []
        self.refresh_hooks()
        for hook in self.registered_hooks:
            watch(hook, self.refresh_hooks)
        # The request journal (None: off): what each VM asked, for tests and operators.
        self.request_ring = request_ring
        # The `now` handed to the core (the runtime's clock: a test may advance it).
        self.clock = clock
        # Told of every answer (route, VM name): a listener's own bookkeeping (the guest
        # plane's last goal-state fetch), kept out of the request's path when None.
        self.on_answer = on_answer
        self.idle_ticks = max(1, round(limits.idle_timeout))
        self.head_ticks = max(1, round(limits.head_timeout))
        self.max_connections = limits.max_connections
        self.max_per_source = limits.max_per_source or limits.max_connections
        self.per_source: dict[str, int] = {}
        self.server_token = b"Server: " + server_header.encode("latin-1") + b"\r\n"
        self.date = b""
        self.connections: set[Connection] = set()
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

    # -- answering -------------------------------------------------------------------
    def answer(
        self,
        method: str,
        target: bytes,
        header_state: int,
        headers: Headers,
        body: bytearray | None,
        peer: str,
        trusted: bool,
        proxy_headers: Headers | None,
        keep_alive: bool,
    ) -> Answer:
        """A complete request's answer, from what its connection gathered (`trusted`: the
        peer is the signed proxy's). Only the core's answers to keep-alive GETs are
        cached (and closing ones, keyed apart, where `cache_closing`); a hook's own
        answers, refusals and 429s never are."""
        proxy = self.proxy
        try:
            vm = (
                self.callers.for_peer(peer)
                if proxy is None
                else proxy.resolve(peer, trusted, proxy_headers, time.time())
            )
        except ProxyRefused as refused:
            request = core_request(method, target, headers, bytes(body or b""), peer)
            return self._refused(refused, request, keep_alive), "-", None
        verdict = None
        if self.hooks:
            verdict = self.take_over(HookedRequest(vm, method, target.decode("latin-1"), peer))
            if verdict is not None and (
                verdict.response is not None or verdict.close or verdict.hold
            ):
                name = "-" if vm is None else vm.name
                return self._taken_over(verdict, keep_alive), name, verdict
        if vm is None:
            request = core_request(method, target, headers, bytes(body or b""), peer)
            return self._unknown(request, keep_alive), "-", verdict
        fast = method == "GET" and self.byte_cache and (keep_alive or self.cache_closing)
        if fast:
            fast = header_state != UNCACHEABLE
            # A closing answer has its own entry (its bytes say Connection: close).
            header_state = header_state if keep_alive else header_state | CLOSING
            cache = self.cache_for(vm)
            hit = cache.entries.get((target, header_state)) if fast else None
            if hit is not None and hit.valid_until is not None and self.clock() >= hit.valid_until:
                hit = None  # time-bound answer (a token's countdown) gone stale
            if hit is not None:
                if self.any_limit and not self._within_budget(vm, hit.route):
                    return self._throttled(hit.route, keep_alive), vm.name, verdict
                return hit, vm.name, verdict
        request = core_request(method, target, headers, bytes(body or b""), peer)
        endpoint = self.dispatcher.route(request)
        route = "unknown" if endpoint is None else endpoint.name
        if self.any_limit and not self._within_budget(vm, route):
            return self._throttled(route, keep_alive), vm.name, verdict
        response = self._run_core(request, endpoint, vm)
        if response.drops_cached:
            self.drop_cached(vm)
        encoded = self.encode(response, route, not keep_alive)
        if fast and response.cacheable:
            entries = self.cache_for(vm).entries
            if len(entries) >= CACHE_ENTRIES:
                entries.clear()  # bounded: odd query strings cannot grow it forever
            entries[(target, header_state)] = encoded
        return encoded, vm.name, verdict

    def _refused(self, refused: ProxyRefused, request: Request, keep_alive: bool) -> Cached:
        """A request whose proxy identity does not hold: each endpoint words it in its
        own shape (identity: error/error_description)."""
        self.metrics.refused(refused.reason)
        endpoint = self.dispatcher.route(request)
        error = refused if endpoint is None else endpoint.own_error(refused)
        return self.encode(error_response(error), "refused", not keep_alive)

    def _unknown(self, request: Request, keep_alive: bool) -> Cached:
        """A caller no VM lists, told so in the shape of the endpoint it asked."""
        self.metrics.unknown_callers += 1
        endpoint = self.dispatcher.route(request)
        error = UnknownCaller() if endpoint is None else endpoint.own_error(UnknownCaller())
        return self.encode(error_response(error), "unknown", not keep_alive)

    def _taken_over(self, verdict: Takeover, keep_alive: bool) -> Cached | None:
        """A hook's answer, encoded for this request alone; None: no answer (the verdict
        says whether to hold the connection or hang up)."""
        if verdict.response is None:
            return None
        return self.encode(verdict.response, f"hook:{verdict.rule}", not keep_alive)

    def _within_budget(self, vm: VmSnapshot, route: str) -> bool:
        """Whether the VM's budget for `route` allows one more request (asked only when
        some budget is on)."""
        limiter = self.limiters.get(route)
        budget = route
        if limiter is None:
            limiter, budget = self.limiters["imds"], "imds"
        if limiter.rate <= 0:  # this route's budget is off; skip building its key
            return True
        return limiter.allow(f"{vm.id}/{budget}", time.monotonic())

    def _throttled(self, route: str, keep_alive: bool) -> Cached:
        self.metrics.throttled += 1
        if route not in self.throttled:
            route = "unknown"
        if keep_alive:
            return self.throttled[route]
        return self.encode(error_response(self.throttle_errors[route]), route, close=True)

    def _run_core(self, request: Request, endpoint: Endpoint | None, vm: VmSnapshot) -> Response:
        try:
            return self.dispatcher.dispatch(request, endpoint, vm, self.clock())
        except ImdsError as error:
            return error_response(error)
        except StoreError:
            # Not acknowledged: the store logged its outage once, not per request.
            return error_response(Unavailable())
        except Exception:
            request_id = secrets.token_hex(8)
            log.exception("internal error answering %s (request id %s)", request.path, request_id)
            return error_response(ImdsError(f"Internal server error. Request id {request_id}"))

    def record(
        self,
        method: str,
        target: bytes,
        headers: Headers | None,
        peer: str,
        status: int,
        route: str,
        vm: str,
        seconds: float,
    ) -> None:
        """Count, log and journal one request (status 0: a hook gave no answer).
        `headers` None: a request refused before it was whole, which the journal does
        not keep."""
        self.metrics.observe(route, status, vm, seconds)
        if self.access_log.enabled:
            path = target.partition(b"?")[0].decode("latin-1")
            self.access_log.record(method, path, status, vm, seconds, peer, route)
        if self.request_ring is not None and headers is not None:
            self.request_ring.record(vm, method, target, headers, status, route, peer)
