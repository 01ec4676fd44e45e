"""Fault injection, plugged into a server (features.ALL): the request hook (off while no
rule may fire), its admin routes, a metric, the configured rules and boot window."""

from __future__ import annotations

from openimds.config import Config, ConfigError
from openimds.faults.admin import FaultsAdmin
from openimds.faults.metrics import FaultsCollector
from openimds.faults.service import FaultError, FaultsService
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    service = FaultsService(clock=runtime.clock.now)
    fleet = runtime.fleet
    _configure(service, runtime.config)
    return Plug(
        hooks=[service],
        admin=[FaultsAdmin(service, lambda name: name in fleet.vms)],
        jobs=[service.refresh],
        collectors=[FaultsCollector(service)],
    )


def check(config: Config) -> None:
    _configure(FaultsService(), config)


def _configure(service: FaultsService, config: Config) -> None:
    settings = config.faults
    try:
        if settings.boot_seconds > 0:
            service.boot(settings.boot_seconds)
        for spec in settings.rules:
            service.add(spec)
    except FaultError as exc:
        raise ConfigError(f"faults.rules: {exc}") from None
