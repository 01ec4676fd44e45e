"""FaultRules: rules from their specs, the hook's first-match-wins order, hits,
the switch that keeps the listener free of the hook while no rule can fire."""

from __future__ import annotations

import pytest

from openimds.config.vm_model import VmSpec
from openimds.core.vm import VmSnapshot
from openimds.faults.rules import FaultError, FaultRules, UnknownFault, parse_spec
from openimds.inventory.live import spec_snapshot
from openimds.web.metadata.hooks import HookedRequest
from tests.support.clock import FakeClock

VM: VmSnapshot = spec_snapshot(
    VmSpec.model_validate({"instance": {"compute": {"name": "vm-a"}}}), 1
)


def request(path: str = "/metadata/instance", vm: VmSnapshot | None = VM) -> HookedRequest:
    return HookedRequest(vm, "GET", path + "?api-version=2021-02-01", "127.0.0.1")


def test_a_rule_limited_to_two_hits_fires_exactly_twice_then_switches_off() -> None:
    fault_rules = FaultRules(clock=FakeClock(100))
    assert not fault_rules.switch.on
    fault_rules.add(parse_spec({"status": 500, "times": 2, "id": "twice"}))
    assert fault_rules.switch.on
    verdicts = [fault_rules(request()) for _ in range(4)]
    assert [v.response.status if v and v.response else None for v in verdicts] == [
        500,
        500,
        None,
        None,
    ]
    assert fault_rules.fired == {"twice": 2}
    assert not fault_rules.switch.on


def test_first_matching_rule_decides_and_others_count_no_hit() -> None:
    fault_rules = FaultRules(clock=FakeClock(0))
    first = fault_rules.add(parse_spec({"path": "/metadata/identity", "status": 429}))
    second = fault_rules.add(parse_spec({"status": 500}))
    token = fault_rules(request("/metadata/identity/oauth2/token"))
    other = fault_rules(request("/metadata/instance/compute"))
    assert token is not None and token.rule == first.rule.id
    assert other is not None and other.response is not None and other.response.status == 500
    assert (first.hits, second.hits) == (1, 1)


def test_vm_scope_and_window() -> None:
    clock = FakeClock(1000)
    fault_rules = FaultRules(clock=clock)
    fault_rules.add(parse_spec({"vm": "vm-a", "close": True, "after": 10, "window": 5}))
    assert fault_rules(request()) is None  # not started yet
    clock.advance(10)
    assert fault_rules(request(vm=None)) is None  # another caller
    verdict = fault_rules(request())
    assert verdict is not None and verdict.close
    clock.advance(5)
    assert fault_rules(request()) is None
    fault_rules.refresh()
    assert not fault_rules.switch.on


def test_boot_window_answers_410_to_everything_and_replaces_the_last() -> None:
    clock = FakeClock(0)
    fault_rules = FaultRules(clock=clock)
    fault_rules.boot(30)
    fault_rules.boot(60)
    assert [live.rule.id for live in fault_rules.rules] == ["boot"]
    clock.advance(59)
    verdict = fault_rules(request("/metadata/scheduledevents"))
    assert verdict is not None and verdict.response is not None
    assert verdict.response.status == 410
    clock.advance(1)
    assert fault_rules(request()) is None


def test_ids_are_unique_and_removal_needs_a_known_id() -> None:
    fault_rules = FaultRules()
    fault_rules.add(parse_spec({"id": "x", "hang": True}))
    with pytest.raises(FaultError, match="exists"):
        fault_rules.add(parse_spec({"id": "x", "hang": True}))
    with pytest.raises(UnknownFault):
        fault_rules.remove("y")
    fault_rules.remove("x")
    assert not fault_rules.switch.on


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "give exactly one of status, sequence, latency, close, hang (got none)"),
        ({"status": 500, "close": True}, "got status, close"),
        ({"status": 200}, "200 is not an error status"),
        ({"sequence": [410, 302]}, "302: a step is 2xx"),
        ({"sequence": [410], "times": 2}, "a sequence runs once"),
        ({"latency": [2, 1]}, "goes backwards"),
        ({"close": True, "retry_after": 5}, "retry_after goes with status or sequence"),
        ({"status": 500, "colour": "red"}, "colour"),
        ({"status": 500, "times": 0}, "times"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(FaultError) as caught:
        parse_spec(data)
    assert message in str(caught.value)
