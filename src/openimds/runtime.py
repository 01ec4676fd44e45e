"""Everything a running server is made of, assembled from the configuration, the
inventory (inventory/) and the features its caller passes (`features.ALL` for a server).

Each feature's `install(runtime)` returns a `Plug`: what it adds to the server (metadata
endpoints, admin routes, budgets, tick jobs, request hooks, collectors).
`build_runtime` merges the plugs and checks them before any socket opens: a path taken
twice or a listener name taken twice stops the start.
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from openimds.config import Config, ConfigError
from openimds.config.admin_token import server_token
from openimds.config.listen import ListenAddress
from openimds.core.app import build_dispatcher, standard_endpoints
from openimds.core.caller import Callers
from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import Endpoint
from openimds.core.signed_caller import ProxyTrust
from openimds.core.throttle import RateLimiter
from openimds.inventory import records
from openimds.inventory.live import LiveInventory
from openimds.inventory.proxy import load_trust
from openimds.inventory.stored import StoredInventory, start_inventory
from openimds.inventory.vm_ids import VmIds
from openimds.store import Store, StoreError, check_url, is_shared, open_store
from openimds.store.follower import Follower, Handler, Lag
from openimds.web.admin_tls import AdminTls, admin_tls, check_files
from openimds.web.login_guard import LoginGuard
from openimds.web.metadata.hooks import RequestHook
from openimds.web.metadata.request_ring import RequestRing
from openimds.web.metrics import RequestMetrics

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from openimds.web.admin_app import AdminRoutes
    from openimds.web.metadata.state import MetadataServer

log = logging.getLogger("openimds")

Job = Callable[[], None]
# Work for once the listeners are up, a step at a time: each `next` a few milliseconds.
Warmup = Callable[[], Iterator[None]]


class Clock:
    """The server's clock: wall time plus an offset that `openimds.testing` can advance.

    The runtime owns one; what reads it is what a virtual clock drives: scheduled events
    (posting, NotBefore, starting, completion), fault rules' windows, and the `now` the
    metadata listener hands the core (so a token's expires_on and the listener's cache of
    time-bound answers follow it). The Date header, access-log stamps, rate limits and idle
    timeouts stay on real time: they are about the wire, not the emulated machine.
    """

    # How far ahead of wall time the clock may go, in all: ten years covers any lifetime a
    # test exercises (tokens, certificates, event notices), and every time it drives stays
    # one that RFC 1123, ISO 8601 and the events' 9999 limit can still write.
    MAX_OFFSET = 10 * 365 * 86400.0

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move forward; ValueError (and no move) past MAX_OFFSET in all, or for a negative
        or non-finite step."""
        if not 0 <= seconds <= self.MAX_OFFSET - self.offset:  # also false for nan
            raise ValueError(
                f"the clock moves forward only, to at most {self.MAX_OFFSET:.0f} s "
                f"({self.MAX_OFFSET / 86400 / 365:.0f} years) ahead of wall time; it is "
                f"{self.offset:g} s ahead now"
            )
        self.offset += seconds


class Feature(Protocol):
    """What the runtime needs of a feature (features.Feature is one): its name, its
    plug, and the checks of its outside inputs."""

    @property
    def name(self) -> str: ...

    def install(self, runtime: Runtime) -> Plug: ...

    def check(self, config: Config) -> None: ...


# Called after each answer of a listener that asks for it: (route, VM name or "-").
AnswerObserver = Callable[[str, int, str], None]  # route, status, VM name


@dataclass(frozen=True)
class Listener:
    """A listener a feature adds beside the metadata one: a token source (Azure Arc, App
    Service, ...) or the guest plane's WireServer and HostGAPlugin, speaking its own
    protocol through the same lean HTTP adapter, with its own dispatcher, the VM(s) it
    speaks for, and TLS when `tls` is set. It shares budgets, metrics and the log.

    A token source's answers are never byte-cached (they depend on secret headers);
    `byte_cache` turns the metadata listener's cache on for a listener whose cacheable
    answers depend only on the path and the VM, for requests that close the connection
    too (each kept apart: the guest agents close every connection). `signed_proxy`:
    callers are resolved through the signed edge proxy too, when one is configured, as
    on the metadata listener. `journal`: its requests go to the request journal.
    `on_answer` sees every answer; `attach` receives the listener's server once built
    (to drop a VM's cached answers when something outside its revision changes)."""

    name: str
    address: ListenAddress
    dispatcher: Dispatcher
    callers: Callers
    tls: ssl.SSLContext | None = None
    byte_cache: bool = False
    signed_proxy: bool = False
    journal: bool = False
    on_answer: AnswerObserver | None = None
    attach: Callable[[MetadataServer], None] | None = None
    # The setting that moves it, for an "address in use" message (hosts.NAME.listen if "").
    setting: str = ""


@dataclass(frozen=True)
class Plug:
    """What one feature adds to a server. Every field is optional."""

    endpoints: Sequence[tuple[str, Endpoint]] = ()
    admin: Sequence[AdminRoutes] = ()
    # Route name -> its own budget; routes not listed share the general "imds" budget.
    budgets: Mapping[str, RateLimiter] = field(default_factory=dict)
    jobs: Sequence[Job] = ()  # run once a second on the event loop
    hooks: Sequence[RequestHook] = ()  # run on the metadata listener before its byte cache
    collectors: Sequence[Collector] = ()  # Prometheus collectors for the admin /metrics
    closers: Sequence[Job] = ()  # run at shutdown, in reverse order
    # Record kind -> handler(changes): what the store's change log says changed of that
    # kind (key -> value at the log's head; None: reload everything), delivered on the
    # event loop (store/follower.py; `each_key` adapts a handler that re-reads by key).
    follows: Mapping[str, Handler] = field(default_factory=dict)
    listeners: Sequence[Listener] = ()  # started with the metadata listener
    # Run on the event loop once every listener is up, between requests, so the first
    # answers need not wait; what one prepares must also work, slower, before it is done.
    warmups: Sequence[Warmup] = ()


@dataclass
class Runtime:
    config: Config
    store: Store
    inventory: LiveInventory
    # The same VMs as kept in the state store: what the admin routes change.
    stored: StoredInventory
    admin_token: str
    # The signed edge proxy's contract (the `proxy` section), None when off.
    proxy: ProxyTrust | None = None
    # The server's time (openimds.testing advances it); see Clock for what it drives.
    clock: Clock = field(default_factory=Clock)
    # The metadata listener's ring of recent requests (None: journal.size is 0).
    request_ring: RequestRing | None = None
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    endpoints: list[tuple[str, Endpoint]] = field(default_factory=list)
    admin: list[AdminRoutes] = field(default_factory=list)
    limiters: dict[str, RateLimiter] = field(default_factory=dict)
    background: list[Job] = field(default_factory=list)
    hooks: list[RequestHook] = field(default_factory=list)
    collectors: list[Collector] = field(default_factory=list)
    closers: list[Job] = field(default_factory=list)
    follows: dict[str, Handler] = field(default_factory=dict)
    # Applies the store's change log to the copies this node keeps (None: not built yet).
    follower: Follower | None = None
    listeners: list[Listener] = field(default_factory=list)
    warmups: list[Warmup] = field(default_factory=list)
    # Listener name ("metadata", "admin", each extra listener's) -> the base URL it was
    # bound to, filled in by the server once its sockets are bound (port 0 resolved).
    bound: dict[str, str] = field(default_factory=dict)
    admin_tls: AdminTls | None = None  # None: the admin listener speaks plain HTTP
    # Refused admin tokens per source address: one count for the API's bearer check and
    # the console's login form, so two doors do not double a guesser's tries.
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    # Set once the server begins to stop, before the admin listener's graceful shutdown
    # (which waits for every open answer): answers that stay open, such as the journal's
    # event streams, read it and end.
    stopping: bool = False

    def dispatcher(self) -> Dispatcher:
        return build_dispatcher(self.endpoints)

    def add(self, feature: str, plug: Plug) -> None:
        taken = {path for path, _ in (*standard_endpoints(), *self.endpoints)}
        for path, endpoint in plug.endpoints:
            if path in taken:
                raise RuntimeError(f"feature {feature}: {path} is already served")
            self.endpoints.append((path, endpoint))
        self.admin.extend(plug.admin)
        self.limiters.update(plug.budgets)
        self.background.extend(plug.jobs)
        self.hooks.extend(plug.hooks)
        self.collectors.extend(plug.collectors)
        self.closers.extend(plug.closers)
        self.warmups.extend(plug.warmups)
        for record_kind, follower in plug.follows.items():
            if record_kind in self.follows:
                raise RuntimeError(f"feature {feature}: record kind {record_kind} followed twice")
            self.follows[record_kind] = follower
        names = {"metadata", "admin", *(listener.name for listener in self.listeners)}
        for listener in plug.listeners:
            if listener.name in names:
                raise RuntimeError(f"feature {feature}: listener {listener.name} twice")
            names.add(listener.name)
            self.listeners.append(listener)

    def follow_store(self, post: Callable[[Job], object]) -> None:
        """Start applying the store's change log to the features that follow a kind,
        through `post` (the event loop's call_soon_threadsafe): the log is read on the
        follower's thread, while the inventory and caches may change only on the loop."""
        if self.follower is None:
            return
        for kind, handler in self.follows.items():
            self.follower.follow(kind, handler)
        self.follower.start(post)

    def readiness(self) -> Lag:
        """Whether this node reaches its store and has applied every committed change."""
        if self.follower is None:
            return Lag(reachable=True, unreachable_for=0.0, behind=0, behind_for=0.0)
        return self.follower.lag()

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        for closer in reversed(self.closers):
            closer()
        if self.follower is not None and self.follower.reader is not self.store:
            self.follower.reader.close()
        self.store.close()


def check_start(config: Config, features: Sequence[Feature]) -> None:
    """Every check of outside inputs a start makes before it opens a socket (the state
    location, each feature's files), creating nothing. `serve` runs it first and
    `config check` runs it alone, so what `check` calls ok, `serve` accepts. ConfigError
    says what is wrong."""
    try:
        check_url(config.state.path)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    load_trust(config.proxy)
    check_files(config)
    for feature in features:
        feature.check(config)


def _prune_budgets(limiters: Mapping[str, RateLimiter]) -> None:
    # The listener takes budgets on the monotonic clock.
    now = time.monotonic()
    for limiter in limiters.values():
        limiter.prune(now)


def _follower(url: str, store: Store, position: int) -> Follower:
    """A shared store's log is read over a handle of its own (its own connection), so a
    hanging read never waits behind the node's writes, nor they behind it."""
    if not is_shared(url):
        return Follower(store, store, position, shared=False)
    return Follower(store, open_store(url, readonly=True), position, shared=True)


def build_runtime(
    config: Config, features: Sequence[Feature], clock: Clock | None = None
) -> Runtime:
    """A server's parts: the store, the inventory, and each feature's plug
    (`features.ALL` for a server; a test passes its own list)."""
    proxy = load_trust(config.proxy)
    store = open_store(config.state.path, exclusive=True)
    runtime: Runtime | None = None
    try:
        # Read before anything is loaded: what commits meanwhile is after it, so the
        # follower applies it (docs/fleet.md, consistency).
        position = store.log_head()
        inventory = LiveInventory(addresses_required=not config.proxy.proxy_only)
        inventory.vm_ids = VmIds(store)
        stored = start_inventory(store, inventory, config.vms)
        runtime = Runtime(
            config=config,
            store=store,
            inventory=inventory,
            stored=stored,
            admin_token=server_token(config, store),
            proxy=proxy,
            clock=clock or Clock(),
            request_ring=RequestRing(config.journal.size) if config.journal.size else None,
        )
        runtime.follower = _follower(config.state.path, store, position)
        runtime.admin_tls = admin_tls(config, store)
        runtime.login_guard = LoginGuard(config.admin.login_failures)
        runtime.limiters["imds"] = RateLimiter(config.server.rate_limit)
        runtime.background.append(functools.partial(_prune_budgets, runtime.limiters))
        runtime.follows[records.KIND] = stored.follow  # other nodes' VM changes
        for feature in features:
            runtime.add(feature.name, feature.install(runtime))
        # The inventory holds the VMs now (in the store and as snapshots); the validated models
        # of a large VM file would otherwise stay in memory for the server's lifetime.
        runtime.config = config.model_copy(update={"vms": []})
    except BaseException:
        # Features installed before the failure may have workers using the store: their
        # closers run before the store closes.
        if runtime is None:
            store.close()
        else:
            runtime.close()
        raise
    return runtime
