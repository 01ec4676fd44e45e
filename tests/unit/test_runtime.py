"""Assembling a server from features: plugs merged and checked before any socket opens."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from openimds.config import Config, load_config
from openimds.config.listen import ListenAddress
from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import BaseEndpoint
from openimds.core.http import Request, Response
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.features import ALL, Feature
from openimds.runtime import Listener, Plug, Runtime, UnhandledEffect, build_runtime

FLEET = next(f for f in ALL if f.name == "fleet")


@dataclass(frozen=True)
class Ping:
    """An effect of the test endpoint."""

    vm: str


class PingEndpoint(BaseEndpoint):
    name: ClassVar[str] = "ping"
    effects: ClassVar[tuple[type, ...]] = (Ping,)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(200, b"pong", effects=(Ping(vm.id),))


HANDLED: list[Ping] = []


def _warm_up() -> Iterator[None]:
    yield


def _with_handler(runtime: Runtime) -> Plug:
    return Plug(
        endpoints=[("/metadata/ping", PingEndpoint())],
        effects={Ping: lambda vm, effect: HANDLED.append(effect)},
        budgets={"ping": RateLimiter(1)},
        jobs=[lambda: None],
        warmups=[_warm_up],
    )


def _without_handler(runtime: Runtime) -> Plug:
    return Plug(endpoints=[("/metadata/ping", PingEndpoint())])


def _same_path(runtime: Runtime) -> Plug:
    return Plug(endpoints=[("/metadata/instance", PingEndpoint())])


def _listener(runtime: Runtime) -> Plug:
    """An extra listener whose endpoint returns an effect no feature handles."""
    dispatcher = Dispatcher([("/ping", PingEndpoint())], metadata_header=False)
    address = ListenAddress("127.0.0.1", 0)
    return Plug(listeners=[Listener("pinger", address, dispatcher, runtime.inventory)])


@pytest.fixture
def fake_features() -> Iterator[dict[str, Feature]]:
    """Three throwaway feature packages, importable by name as real ones are."""
    made: dict[str, Feature] = {}
    for name, install in [
        ("handled", _with_handler),
        ("unhandled", _without_handler),
        ("clash", _same_path),
        ("listener", _listener),
    ]:
        package = f"openimds_test_{name}"
        module = types.ModuleType(f"{package}.feature")
        module.install = install  # type: ignore[attr-defined]
        sys.modules[package] = types.ModuleType(package)
        sys.modules[f"{package}.feature"] = module
        made[name] = Feature(name, package)
    yield made
    for feature in made.values():
        sys.modules.pop(feature.package, None)
        sys.modules.pop(f"{feature.package}.feature", None)


def _config() -> Config:
    return load_config(None, env={"OPENIMDS_STATE": "memory:"})


def test_a_plug_is_merged_into_the_runtime(fake_features: dict[str, Feature]) -> None:
    runtime = build_runtime(
        load_config(None, env={"OPENIMDS_STATE": "memory:"}), [FLEET, fake_features["handled"]]
    )
    try:
        assert ("/metadata/ping", runtime.endpoints[0][1]) in runtime.endpoints
        assert runtime.limiters["ping"].rate == 1
        assert len(runtime.background) == 2  # its job beside the budgets pruning
        assert runtime.warmups == [_warm_up]
        vm = next(iter(runtime.inventory.vms.values()))
        response = runtime.dispatcher().handle(
            Request("GET", "/metadata/ping", headers=(("metadata", "true"),)), vm, 0.0
        )
        runtime.apply_effects(vm, response.effects)
        assert HANDLED[-1] == Ping(vm.id)
    finally:
        runtime.close()


def test_an_effect_no_feature_handles_stops_the_start(fake_features: dict[str, Feature]) -> None:
    config = _config()
    with pytest.raises(UnhandledEffect, match="ping may return Ping, which no feature handles"):
        build_runtime(config, [fake_features["unhandled"]])


def test_an_unknown_effect_is_an_error_not_a_silent_loss(fake_features: dict[str, Feature]) -> None:
    runtime = build_runtime(_config(), [FLEET])
    try:
        vm = next(iter(runtime.inventory.vms.values()))
        with pytest.raises(UnhandledEffect, match="no handler for effect Ping"):
            runtime.apply_effects(vm, (Ping(vm.id),))
    finally:
        runtime.close()


def test_two_features_cannot_serve_one_path(fake_features: dict[str, Feature]) -> None:
    config = _config()
    with pytest.raises(RuntimeError, match="/metadata/instance is already served"):
        build_runtime(config, [fake_features["clash"]])
    handled = fake_features["handled"]
    with pytest.raises(RuntimeError, match="/metadata/ping is already served"):
        build_runtime(config, [handled, handled])


def test_extra_listeners_are_checked_like_the_metadata_one(
    fake_features: dict[str, Feature],
) -> None:
    config = _config()
    listener, handled = fake_features["listener"], fake_features["handled"]
    with pytest.raises(UnhandledEffect, match="ping may return Ping"):
        build_runtime(config, [listener])
    runtime = build_runtime(config, [handled, listener])
    try:
        assert [x.name for x in runtime.listeners] == ["pinger"]
    finally:
        runtime.close()
    with pytest.raises(RuntimeError, match="listener pinger twice"):
        build_runtime(config, [handled, listener, listener])


def test_every_shipped_feature_is_installed_by_default() -> None:
    runtime = build_runtime(_config(), ALL)
    try:
        paths = {path for path, _ in runtime.endpoints}
        assert {
            "/metadata/identity/oauth2/token",
            "/metadata/attested/document",
            "/metadata/scheduledevents",
        } <= paths
        assert len(runtime.admin) == len(ALL)
    finally:
        runtime.close()
