"""Everything a running server is made of, assembled from the configuration.

Features (identity, attested data, scheduled events) plug in through `FEATURES`: each is
a function that adds its metadata endpoints, admin routes, public paths and budgets to
the Runtime before the listeners start.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from openimds.config import Config
from openimds.core.app import build_service
from openimds.core.endpoint import Endpoint
from openimds.core.inventory import VmSnapshot
from openimds.core.service import MetadataService
from openimds.core.throttle import RateLimiter
from openimds.fleet import Fleet
from openimds.store import Store, open_store
from openimds.web.metrics import RequestMetrics

ADMIN_TOKEN_KEY = "admin_token"


@dataclass
class Runtime:
    config: Config
    store: Store
    fleet: Fleet
    admin_token: str
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    endpoints: list[tuple[str, Endpoint]] = field(default_factory=list)
    admin_routes: list[BaseRoute] = field(default_factory=list)
    public_paths: list[str] = field(default_factory=list)
    # Route name -> its own budget; routes not listed share the general IMDS budget.
    limiters: dict[str, RateLimiter] = field(default_factory=dict)
    effect_handlers: list[Callable[[VmSnapshot, tuple[object, ...]], None]] = field(
        default_factory=list
    )
    background: list[Callable[[], None]] = field(default_factory=list)  # run every tick
    closers: list[Callable[[], None]] = field(default_factory=list)
    # Prometheus collectors of the features, registered on the admin app's /metrics.
    collectors: list[Collector] = field(default_factory=list)

    def service(self) -> MetadataService:
        return build_service(self.endpoints)

    def apply_effects(self, vm: VmSnapshot, effects: tuple[object, ...]) -> None:
        for handler in self.effect_handlers:
            handler(vm, effects)

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer()
        self.store.close()


Feature = Callable[[Runtime], None]
FEATURES: list[Feature] = []


def admin_token(config: Config, store: Store) -> str:
    """From config or environment; else generated once, kept in the state store, and
    printed on the start that generated it (and never logged)."""
    if config.admin.token is not None:
        return config.admin.token.get_secret_value()
    existing = store.get_setting(ADMIN_TOKEN_KEY)
    if existing is not None:
        return existing
    token = store.put_setting_once(ADMIN_TOKEN_KEY, secrets.token_urlsafe(32))
    print(
        f"openimds: generated an admin token (kept in {config.state.path}): {token}",
        file=sys.stderr,
        flush=True,
    )
    return token


def build_runtime(config: Config) -> Runtime:
    store = open_store(config.state.path)
    runtime = Runtime(
        config=config,
        store=store,
        fleet=Fleet(config.vms),
        admin_token=admin_token(config, store),
    )
    runtime.limiters["imds"] = RateLimiter(config.server.rate_limit)
    for feature in FEATURES:
        feature(runtime)
    return runtime
