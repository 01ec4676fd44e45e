"""Fault injection, plugged into a server (features.ALL): the request hook (off while no
rule may fire), its admin routes, a metric, the configured rules and boot window."""

from __future__ import annotations

from openimds.config import Config, ConfigError
from openimds.faults.admin import FaultsAdmin
from openimds.faults.metrics import FaultsCollector
from openimds.faults.rules import FaultError, FaultRules
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    fault_rules = FaultRules(clock=runtime.clock.now)
    _configure(fault_rules, runtime.config)
    return Plug(
        hooks=[fault_rules],
        admin=[FaultsAdmin(fault_rules)],
        jobs=[fault_rules.refresh],
        collectors=[FaultsCollector(fault_rules)],
    )


def check(config: Config) -> None:
    _configure(FaultRules(), config)


def _configure(fault_rules: FaultRules, config: Config) -> None:
    settings = config.faults
    try:
        if settings.boot_seconds > 0:
            fault_rules.boot(settings.boot_seconds)
        for spec in settings.rules:
            fault_rules.add(spec)
    except FaultError as exc:
        raise ConfigError(f"faults.rules: {exc}") from None
