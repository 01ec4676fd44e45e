"""The faults service: rules from their specs, the hook's first-match-wins order, hits,
the switch that keeps the listener free of the hook while no rule can fire."""

from __future__ import annotations

import pytest

from openimds.config.vm_model import VmSpec
from openimds.core.inventory import VmSnapshot
from openimds.faults.service import FaultError, FaultsService, UnknownFault, parse_spec
from openimds.fleet.inventory import spec_snapshot
from openimds.web.metadata.hooks import HookedRequest
from tests.support.clock import FakeClock

VM: VmSnapshot = spec_snapshot(
    VmSpec.model_validate({"instance": {"compute": {"name": "vm-a"}}}), 1
)


def request(path: str = "/metadata/instance", vm: VmSnapshot | None = VM) -> HookedRequest:
    return HookedRequest(vm, "GET", path + "?api-version=2021-02-01", "127.0.0.1")


def test_a_rule_limited_to_two_hits_fires_exactly_twice_then_switches_off() -> None:
    service = FaultsService(clock=FakeClock(100))
    assert not service.switch.on
    service.add(parse_spec({"status": 500, "times": 2, "id": "twice"}))
    assert service.switch.on
    verdicts = [service(request()) for _ in range(4)]
    assert [v.response.status if v and v.response else None for v in verdicts] == [
        500,
        500,
        None,
        None,
    ]
    assert service.fired == {"twice": 2}
    assert not service.switch.on


def test_first_matching_rule_decides_and_others_count_no_hit() -> None:
    service = FaultsService(clock=FakeClock(0))
    first = service.add(parse_spec({"path": "/metadata/identity", "status": 429}))
    second = service.add(parse_spec({"status": 500}))
    token = service(request("/metadata/identity/oauth2/token"))
    other = service(request("/metadata/instance/compute"))
    assert token is not None and token.rule == first.rule.id
    assert other is not None and other.response is not None and other.response.status == 500
    assert (first.hits, second.hits) == (1, 1)


def test_vm_scope_and_window() -> None:
    clock = FakeClock(1000)
    service = FaultsService(clock=clock)
    service.add(parse_spec({"vm": "vm-a", "close": True, "after": 10, "window": 5}))
    assert service(request()) is None  # not started yet
    clock.advance(10)
    assert service(request(vm=None)) is None  # another caller
    verdict = service(request())
    assert verdict is not None and verdict.close
    clock.advance(5)
    assert service(request()) is None
    service.refresh()
    assert not service.switch.on


def test_boot_window_answers_410_to_everything_and_replaces_the_last() -> None:
    clock = FakeClock(0)
    service = FaultsService(clock=clock)
    service.boot(30)
    service.boot(60)
    assert [live.rule.id for live in service.rules] == ["boot"]
    clock.advance(59)
    verdict = service(request("/metadata/scheduledevents"))
    assert verdict is not None and verdict.response is not None
    assert verdict.response.status == 410
    clock.advance(1)
    assert service(request()) is None


def test_ids_are_unique_and_removal_needs_a_known_id() -> None:
    service = FaultsService()
    service.add(parse_spec({"id": "x", "hang": True}))
    with pytest.raises(FaultError, match="exists"):
        service.add(parse_spec({"id": "x", "hang": True}))
    with pytest.raises(UnknownFault):
        service.remove("y")
    service.remove("x")
    assert not service.switch.on


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
