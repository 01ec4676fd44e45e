"""What an operator asks for (admin API, CLI, scenario files) and how it becomes events.

Times: `+5m`, `+90s`, `+1h30m`, `now`, a number of seconds (relative), an RFC 3339 time
with a zone (`2026-11-25T20:00:00Z`) or an RFC 1123 one (`Wed, 25 Nov 2026 20:00:00 GMT`).
A relative `at` counts from the anchor (now, or server start for the scenario in the
config); a relative `notBefore` counts from `at`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from openimds.config.model import EventsSettings
from openimds.config.report import explain, field_path
from openimds.config.vm_model import VmSpec
from openimds.core import timestamps
from openimds.core.scheduled_events import Event, EventSource, EventType, Policy
from openimds.web.admin_errors import AdminError

TargetKind = Literal["vm", "scaleSet", "availabilitySet", "placementGroup", "tag"]
TARGET_KINDS: tuple[TargetKind, ...] = (
    "vm",
    "scaleSet",
    "availabilitySet",
    "placementGroup",
    "tag",
)

# Azure's own wording where its docs quote it; ours for Preempt and Terminate.
DESCRIPTIONS: dict[EventType, str] = {
    "Freeze": (
        "Virtual machine is being paused because of a memory-preserving Live Migration operation."
    ),
    "Reboot": "Virtual machine is going to be restarted as requested by authorized user.",
    "Redeploy": "Host server is undergoing maintenance.",
    "Preempt": "Virtual machine is being evicted to free up Spot capacity.",
    "Terminate": "Virtual machine is being deleted from its scale set.",
}
SOURCES: dict[EventType, EventSource] = {
    "Freeze": "Platform",
    "Reboot": "User",
    "Redeploy": "Platform",
    "Preempt": "Platform",
    "Terminate": "User",
}
# Expected outage in seconds (8: -1 unknown); the documented Freeze sample says 5.
DURATIONS: dict[EventType, int] = {
    "Freeze": 5,
    "Reboot": -1,
    "Redeploy": -1,
    "Preempt": -1,
    "Terminate": -1,
}


class ScheduleError(AdminError, ValueError):
    """A request that cannot become an event, worded for the operator."""


def parse_time(value: str | float, base: float) -> float:
    """Epoch seconds for an absolute time, or `base` plus a relative one."""
    try:
        return timestamps.parse_time(value, base)
    except timestamps.TimeFormError as exc:
        raise ScheduleError(str(exc)) from None


def parse_target(value: str | Mapping[str, str]) -> tuple[TargetKind, str]:
    """`vm:NAME`, `scaleSet:NAME`, `availabilitySet:NAME`, `placementGroup:ID`, `tag:K=V`,
    or the same as a one-key mapping."""
    if isinstance(value, str):
        kind, sep, arg = value.partition(":")
        if not sep:
            raise ScheduleError(f"target {value!r}: expected KIND:VALUE, e.g. vm:web-0")
    elif len(value) == 1:
        ((kind, arg),) = value.items()
    else:
        raise ScheduleError("target: give exactly one of " + ", ".join(TARGET_KINDS))
    if kind not in TARGET_KINDS:
        raise ScheduleError(f"target kind {kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    if not isinstance(arg, str) or not arg:
        raise ScheduleError(f"target {kind}: needs a value")
    if kind == "tag" and "=" not in arg:
        raise ScheduleError(f"target tag {arg!r}: expected NAME=VALUE")
    return kind, arg


def _matches(spec: VmSpec, kind: TargetKind, arg: str) -> bool:
    compute = spec.instance.compute
    if kind == "vm":
        return arg in (spec.display_name, compute.name)
    if kind == "scaleSet":
        return compute.vmScaleSetName == arg
    if kind == "availabilitySet":
        return spec.availabilitySet == arg
    if kind == "placementGroup":
        return compute.placementGroupId == arg
    name, _, tag_value = arg.partition("=")
    return any(t.name == name and t.value == tag_value for t in compute.tagsList)


def resolve_target(
    specs: Mapping[str, VmSpec], target: str | Mapping[str, str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(VM ids, Resources names) a target selects; with one VM, no target means it."""
    if target is None:
        if len(specs) != 1:
            raise ScheduleError("target: required when the server has several VMs")
        chosen = list(specs.items())
    else:
        kind, arg = parse_target(target)
        chosen = [(vm_id, s) for vm_id, s in specs.items() if _matches(s, kind, arg)]
        if not chosen:
            raise ScheduleError(f"target {kind}:{arg} matches no VM")
    chosen.sort()
    return (
        tuple(vm_id for vm_id, _ in chosen),
        tuple(s.instance.compute.name or vm_id for vm_id, s in chosen),
    )


def _time_value(value: Any) -> Any:
    # Checked before the union, whose per-member errors would say "str" and "float".
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ValueError(
        "expected a time (+5m, now, RFC 3339 or RFC 1123 with a zone) or a number of seconds"
    )


def _target_value(value: Any) -> Any:
    if isinstance(value, str) or (
        isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    ):
        return value
    raise ValueError("expected KIND:VALUE (e.g. vm:web-0) or a one-key mapping (e.g. {vm: web-0})")


TimeValue = Annotated[str | float, BeforeValidator(_time_value)]
TargetValue = Annotated[str | dict[str, str], BeforeValidator(_target_value)]


class ScheduleRequest(BaseModel):
    """One event to schedule; the camelCase names are the admin API's and the scenario's."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    type: EventType
    target: TargetValue | None = None
    at: TimeValue = "now"
    not_before: TimeValue | None = None
    duration_in_seconds: int | None = Field(None, ge=-1)
    description: str | None = None
    event_source: EventSource | None = None
    complete_after: float | None = Field(None, ge=0)
    approval: Policy | None = None
    event_id: str | None = Field(None, min_length=1, max_length=64)
    cancel_at: TimeValue | None = None  # the platform withdraws the event then

    @field_validator("event_id")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError("eventId may hold letters, digits, '.', '_' and '-' only")
        return value


def notice(settings: EventsSettings, event_type: EventType) -> float:
    notices = settings.notice
    return float(getattr(notices, event_type.lower()))


def build_event(
    request: ScheduleRequest,
    *,
    specs: Mapping[str, VmSpec],
    settings: EventsSettings,
    anchor: float,
    new_id: Callable[[], str],
) -> Event:
    """The core event a request describes, with every default filled in."""
    vms, names = resolve_target(specs, request.target)
    posted = parse_time(request.at, anchor)
    if request.not_before is None:
        not_before = posted + notice(settings, request.type)
    else:
        not_before = parse_time(request.not_before, posted)
    duration = request.duration_in_seconds
    if duration is None:
        duration = DURATIONS[request.type]
    hold = settings.completion_delay if request.complete_after is None else request.complete_after
    _check_range(posted, not_before, not_before + max(duration, 0) + hold)
    return Event(
        id=request.event_id or new_id(),
        type=request.type,
        vms=vms,
        resources=names,
        posted_at=posted,
        not_before=not_before,
        duration=duration,
        description=request.description
        if request.description is not None
        else DESCRIPTIONS[request.type],
        source=request.event_source or SOURCES[request.type],
        hold=hold,
        policy=request.approval or settings.approval,
        cancel_at=_cancel_at(request, posted, not_before),
    )


def _cancel_at(request: ScheduleRequest, posted: float, not_before: float) -> float | None:
    """When the event is withdrawn: a relative time counts from its posting, as notBefore's
    does; it must fall between posting and NotBefore, the only time a cancel can happen."""
    if request.cancel_at is None:
        return None
    cancel = parse_time(request.cancel_at, posted)
    if not posted < cancel < not_before:
        raise ScheduleError(
            "cancelAt: must fall after the event is posted (at) and before its notBefore"
        )
    return cancel


# Times an event may reach (1970 to the start of 9999): every later rendering (RFC 1123
# NotBefore, the admin API's ISO times) must stay possible, or the event, once stored,
# would break every scheduledevents answer of its VMs.
LATEST = 253370764800.0


def _check_range(posted: float, not_before: float, removal: float) -> None:
    for name, value in (("at", posted), ("notBefore", not_before), ("removal", removal)):
        if not 0 <= value <= LATEST:  # also false for nan
            raise ScheduleError(
                f"{name}: the event would reach a time outside 1970-01-01..9999-01-01 "
                "(check at, notBefore, durationInSeconds and completeAfter)"
            )


def new_event_id() -> str:
    """A random GUID, as Azure's EventIds are."""
    return str(uuid.uuid4())


def scenario_requests(data: Any) -> list[ScheduleRequest]:
    """A scenario: `{"events": [...]}` or a bare list, each item a schedule request."""
    items = data.get("events") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"events"}:
        extra = ", ".join(sorted(set(data) - {"events"}))
        raise ScheduleError(f"scenario: unknown top-level key(s) {extra}; expected `events`")
    if not isinstance(items, list):
        raise ScheduleError("scenario: expected a list of events (or `events:` holding one)")
    return [validate_request(item, f"scenario event {i}") for i, item in enumerate(items)]


def validate_request(data: Any, where: str = "event") -> ScheduleRequest:
    """A ScheduleRequest, or a ScheduleError listing every problem with its field, worded
    as configuration errors are (field path, what is allowed)."""
    try:
        return ScheduleRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field_path(tuple(err['loc']))}: {explain(err, tuple(err['loc']), ScheduleRequest)}"
            for err in exc.errors()
        )
        raise ScheduleError(f"{where}: {problems}") from None
