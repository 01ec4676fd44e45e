"""Operator requests: times, targets, defaults (docs/scheduled-events.md); times that could
not be rendered are refused before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from openimds.config.model import EventsSettings
from openimds.config.vm_model import VmSpec
from openimds.events.schedule import (
    LATEST,
    ScheduleError,
    build_event,
    parse_target,
    parse_time,
    resolve_target,
    scenario_requests,
    validate_request,
)

BASE = 1_764_000_000.0  # 2025-11-24T16:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+5m", BASE + 300),
        ("5m", BASE + 300),
        ("+30s", BASE + 30),
        ("+1h30m", BASE + 5400),
        ("+1.5s", BASE + 1.5),
        ("+250ms", BASE + 0.25),
        ("+2d", BASE + 172_800),
        ("+90", BASE + 90),
        (45, BASE + 45),
        (0.5, BASE + 0.5),
        ("now", BASE),
        ("2025-11-24T16:10:00Z", BASE + 600),
        ("2025-11-24T17:10:00+01:00", BASE + 600),
        ("Mon, 24 Nov 2025 16:10:00 GMT", BASE + 600),
    ],
)
def test_times(text: str | float, expected: float) -> None:
    assert parse_time(text, BASE) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["soon", "+5x", "2025-11-24T16:10:00", "", "-5m"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_time(text, BASE)


def spec(name: str, **compute: Any) -> VmSpec:
    extra = compute.pop("availabilitySet", "")
    return VmSpec.model_validate(
        {"name": name, "availabilitySet": extra, "instance": {"compute": {"name": name, **compute}}}
    )


FLEET = {
    "web-0": spec("web-0", vmScaleSetName="web", tagsList=[{"name": "role", "value": "front"}]),
    "web-1": spec("web-1", vmScaleSetName="web", placementGroupId="pg-1"),
    "db-0": spec("db-0", availabilitySet="db-set", tags="role:back;tier:1"),
}


@pytest.mark.parametrize(
    ("target", "vms"),
    [
        ("vm:web-1", ("web-1",)),
        ({"vm": "db-0"}, ("db-0",)),
        ("scaleSet:web", ("web-0", "web-1")),
        ({"availabilitySet": "db-set"}, ("db-0",)),
        ("placementGroup:pg-1", ("web-1",)),
        ("tag:role=front", ("web-0",)),
        ("tag:tier=1", ("db-0",)),
    ],
)
def test_targets(target: str | dict[str, str], vms: tuple[str, ...]) -> None:
    assert resolve_target(FLEET, target) == (vms, vms)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("web-0", "expected KIND:VALUE"),
        ("host:x", "expected one of"),
        ({"vm": "a", "tag": "b=c"}, "exactly one"),
        ("tag:role", "NAME=VALUE"),
        ("vm:", "needs a value"),
        ("scaleSet:nope", "matches no VM"),
        (None, "several VMs"),
    ],
)
def test_bad_targets(target: str | dict[str, str] | None, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        resolve_target(FLEET, target)
    if target is not None and not isinstance(target, dict) and ":" not in target:
        with pytest.raises(ScheduleError):
            parse_target(target)


def test_one_vm_needs_no_target_and_resources_use_the_compute_name() -> None:
    only = {"demo": VmSpec.model_validate({"name": "demo", "instance": {"compute": {"name": "x"}}})}
    assert resolve_target(only, None) == (("demo",), ("x",))


def test_defaults_follow_the_type() -> None:
    settings = EventsSettings()
    built = {
        t: build_event(
            validate_request({"type": t, "target": "vm:web-0"}),
            specs=FLEET,
            settings=settings,
            anchor=BASE,
            new_id=lambda: "fixed",
        )
        for t in ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")
    }
    notices = {t: e.not_before - e.posted_at for t, e in built.items()}
    # 8: minimum notice per type; Terminate is the scale set's 5-15 min setting (default 5).
    assert notices == {
        "Freeze": 900,
        "Reboot": 900,
        "Redeploy": 600,
        "Preempt": 30,
        "Terminate": 300,
    }
    assert built["Freeze"].duration == 5 and built["Preempt"].duration == -1
    assert built["Reboot"].hold == 60 and built["Reboot"].policy == "all"
    assert built["Terminate"].source == "User" and built["Redeploy"].source == "Platform"
    assert all(e.id == "fixed" and e.posted_at == BASE for e in built.values())


def test_overrides() -> None:
    request = validate_request(
        {
            "type": "Preempt",
            "target": "scaleSet:web",
            "at": "+10s",
            "notBefore": "+2s",
            "durationInSeconds": 0,
            "description": "drill",
            "eventSource": "User",
            "completeAfter": 1,
            "approval": "all",
            "eventId": "drill-1",
        }
    )
    built = build_event(
        request, specs=FLEET, settings=EventsSettings(), anchor=BASE, new_id=lambda: "unused"
    )
    assert (built.id, built.posted_at, built.not_before) == ("drill-1", BASE + 10, BASE + 12)
    assert (built.duration, built.description, built.source) == (0, "drill", "User")
    assert (built.hold, built.policy, built.vms) == (1, "all", ("web-0", "web-1"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "Nap"}, "type"),
        ({"type": "Reboot", "notbefore": "+1m"}, "notbefore"),
        ({"type": "Reboot", "durationInSeconds": -2}, "durationInSeconds"),
        ({"type": "Reboot", "eventId": "a b"}, "eventId"),
        ({"type": "Reboot", "approval": "most"}, "approval"),
    ],
)
def test_invalid_requests_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        validate_request(data)


def test_scenario_shapes() -> None:
    assert len(scenario_requests({"events": [{"type": "Reboot"}, {"type": "Freeze"}]})) == 2
    assert len(scenario_requests([{"type": "Reboot"}])) == 1
    with pytest.raises(ScheduleError, match="unknown top-level"):
        scenario_requests({"events": [], "extra": 1})
    with pytest.raises(ScheduleError, match="expected a list"):
        scenario_requests({"events": {"type": "Reboot"}})
    with pytest.raises(ScheduleError, match="scenario event 1"):
        scenario_requests([{"type": "Reboot"}, {"type": "Nope"}])


# -- times an event can be rendered with ---------------------------------------------------
def build(settings: EventsSettings | None = None, /, **fields: object) -> float:
    """The NotBefore of a Freeze for the only VM, scheduled at BASE."""
    request = validate_request({"type": "Freeze", **fields})
    event = build_event(
        request,
        specs={"vm-a": spec("vm-a")},
        settings=settings or EventsSettings(),
        anchor=BASE,
        new_id=lambda: "id-1",
    )
    return event.not_before


@pytest.mark.parametrize(
    "fields",
    [
        {"notBefore": 1e300},
        {"notBefore": float("nan")},
        {"notBefore": "+99999999999d"},
        {"at": -1e12},
        {"at": "1969-12-31T23:59:59Z"},
        {"durationInSeconds": 10**20},
        {"completeAfter": 1e300},
        {"completeAfter": float("inf")},
        {"notBefore": "9999-12-31T23:59:59Z"},
    ],
)
def test_times_outside_the_renderable_range_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match=r"outside 1970-01-01\.\.9999-01-01"):
        build(**fields)


def test_a_huge_configured_notice_is_refused_at_scheduling() -> None:
    settings = EventsSettings.model_validate({"notice": {"freeze": 1e300}})
    with pytest.raises(ScheduleError, match="notBefore"):
        build(settings)


def test_the_edges_of_the_range_still_schedule() -> None:
    assert build(notBefore="9998-12-31T00:00:00Z", completeAfter=0, durationInSeconds=0) < LATEST
    assert build(at="1970-01-01T00:00:00Z", notBefore="+0s") == 0.0
