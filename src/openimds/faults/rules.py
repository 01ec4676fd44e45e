"""The live fault rules of a server and the request hook that applies them.

Rules live in this node's memory, not in the state store: they are a test's or an
operator's short-lived instrument, their hit counts are per node, and a restart starting
clean (with the configured rules and boot window again) is what a test wants. Everything
here runs on the event loop (the listener's hook, the admin app, the tick): no lock.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from openimds.config.faults_model import FaultSpec
from openimds.config.report import explain, field_path
from openimds.core.faults import FaultRule, act, matches, spent
from openimds.web.metadata.hooks import HookedRequest, HookSwitch, Takeover

BOOT = "boot"


class FaultError(ValueError):
    """A rule that cannot be added, worded for the operator."""


class UnknownFault(LookupError):
    def __init__(self, rule_id: str) -> None:
        super().__init__(f"no fault rule has the id {rule_id!r}")


@dataclass
class LiveRule:
    rule: FaultRule
    spec: FaultSpec
    hits: int = 0


def parse_spec(data: Any, where: str = "the rule") -> FaultSpec:
    """A rule from JSON-like data, with the configuration's wording of what is wrong."""
    try:
        return FaultSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{field_path(tuple(err['loc']))}: " if err["loc"] else "")
            + explain(err, tuple(err["loc"]), FaultSpec)
            for err in exc.errors()
        )
        raise FaultError(f"{where}: {problems}") from None


def to_rule(spec: FaultSpec, rule_id: str, now: float) -> FaultRule:
    start = now + spec.after
    latency = spec.latency
    delay = (0.0, 0.0)
    if latency is not None:
        delay = (latency, latency) if isinstance(latency, float | int) else latency
    statuses: tuple[int, ...] = ()
    if spec.status is not None:
        statuses = (spec.status,)
    elif spec.sequence is not None:
        statuses = tuple(spec.sequence)
    return FaultRule(
        id=rule_id,
        kind=spec.kind,  # type: ignore[arg-type]  # one of FAULT_KINDS, checked by the model
        path=spec.path,
        vm=spec.vm,
        statuses=statuses,
        retry_after=spec.retry_after,
        delay=(float(delay[0]), float(delay[1])),
        times=spec.times,
        start=start if spec.after else None,
        until=None if spec.window is None else start + spec.window,
    )


class FaultRules:
    """The rules, in the order they were added, and the hook (`self` is callable)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        pick: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.clock = clock
        self.pick = pick
        self.rules: list[LiveRule] = []
        self.switch = HookSwitch()
        self.fired: dict[str, int] = {}

    # -- the hook -------------------------------------------------------------------------
    def __call__(self, request: HookedRequest) -> Takeover | None:
        now = self.clock()
        vm = None if request.vm is None else request.vm.name
        path = request.path
        for live in self.rules:
            if not matches(live.rule, vm, path, now, live.hits):
                continue
            action = act(live.rule, live.hits, path, self.pick)
            live.hits += 1
            self.fired[live.rule.id] = self.fired.get(live.rule.id, 0) + 1
            if spent(live.rule, live.hits, now):
                self.refresh(now)
            if action.passes:
                return None
            return Takeover(
                action.rule,
                response=action.response,
                close=action.close,
                hold=action.hold,
                delay=action.delay,
            )
        return None

    # -- the operator side ----------------------------------------------------------------
    def add(self, spec: FaultSpec) -> LiveRule:
        rule_id = spec.id or f"f-{secrets.token_hex(3)}"
        if any(live.rule.id == rule_id for live in self.rules):
            raise FaultError(f"a fault rule with the id {rule_id!r} exists; remove it first")
        live = LiveRule(to_rule(spec, rule_id, self.clock()), spec)
        self.rules.append(live)
        self.refresh()
        return live

    def boot(self, seconds: float) -> LiveRule:
        """Every call gets 410 for `seconds` from now (Azure's answer while IMDS is not
        ready yet); replaces an earlier boot window."""
        self.rules = [live for live in self.rules if live.rule.id != BOOT]
        return self.add(FaultSpec(id=BOOT, status=410, window=seconds))

    def remove(self, rule_id: str) -> LiveRule:
        for live in self.rules:
            if live.rule.id == rule_id:
                self.rules.remove(live)
                self.refresh()
                return live
        raise UnknownFault(rule_id)

    def clear(self) -> int:
        count = len(self.rules)
        self.rules = []
        self.refresh()
        return count

    def refresh(self, now: float | None = None) -> None:
        """The hook is on while some rule may still fire (run on the tick too, so a
        rule whose window ended stops costing requests anything)."""
        at = self.clock() if now is None else now
        self.switch.set(any(not spent(live.rule, live.hits, at) for live in self.rules))
