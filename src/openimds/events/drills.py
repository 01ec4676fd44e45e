"""Maintenance drills: the events Azure sends for common maintenance, as presets with
Azure's wording and realistic timings, and a compressed "dev" timing for CI
(`openimds events drill NAME [--dev]`, `imds.drill(NAME)`; docs/scheduled-events.md,
"Drills", lists the sources of each timing).

Real timings: the notice is Azure's documented minimum NotBefore lead time for the type
(Freeze and Reboot 15 min, Redeploy 10 min, Preempt 30 s, Terminate the scale set's
setting, 5 min by default); DurationInSeconds is what the documentation gives for the
impact (a live migration's pause, "typically" 5 s in its sample) or -1 where Azure says
the duration is unknown. Dev timings keep the same order of events with notices of
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from openimds.core.scheduled_events import EventSource, EventType
from openimds.web.admin_errors import AdminError


@dataclass(frozen=True, slots=True)
class Drill:
    name: str
    type: EventType
    source: EventSource
    description: str
    notice: float  # seconds from posting to NotBefore
    dev_notice: float
    duration: int  # DurationInSeconds: -1 unknown
    summary: str
    cancel_after: float | None = None  # seconds from posting to the platform's cancel
    dev_cancel_after: float | None = None


DRILLS: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill(
            "live-migration",
            "Freeze",
            "Platform",
            "Virtual machine is being paused because of a memory-preserving Live Migration "
            "operation.",
            notice=900,
            dev_notice=10,
            duration=5,
            summary="memory-preserving live migration: a pause of a few seconds",
        ),
        Drill(
            "host-maintenance",
            "Freeze",
            "Platform",
            "Host server is undergoing maintenance.",
            notice=900,
            dev_notice=10,
            duration=9,
            summary="host update in place: the VM is paused, not rebooted",
        ),
        Drill(
            "canceled-maintenance",
            "Freeze",
            "Platform",
            "Host server is undergoing maintenance.",
            notice=900,
            dev_notice=10,
            duration=9,
            summary="host maintenance announced, then withdrawn 5 min later, before NotBefore",
            cancel_after=300,
            dev_cancel_after=5,
        ),
        Drill(
            "user-reboot",
            "Reboot",
            "User",
            "Virtual machine is going to be restarted as requested by authorized user.",
            notice=900,
            dev_notice=10,
            duration=-1,
            summary="a reboot someone with access asked for",
        ),
        Drill(
            "user-redeploy",
            "Redeploy",
            "User",
            "Virtual machine is going to be redeployed as requested by authorized user.",
            notice=600,
            dev_notice=10,
            duration=-1,
            summary="a redeploy to another host someone asked for (temporary disk lost)",
        ),
        Drill(
            "platform-redeploy",
            "Redeploy",
            "Platform",
            "Host server is undergoing maintenance.",
            notice=600,
            dev_notice=10,
            duration=-1,
            summary="the platform moves the VM to another host (temporary disk lost)",
        ),
        Drill(
            "spot-eviction",
            "Preempt",
            "Platform",
            "Virtual machine is being evicted to free up Spot capacity.",
            notice=30,
            dev_notice=5,
            duration=-1,
            summary="a Spot VM evicted: 30 s of notice",
        ),
        Drill(
            "scale-in",
            "Terminate",
            "User",
            "Virtual machine is being deleted from its scale set.",
            notice=300,
            dev_notice=10,
            duration=-1,
            summary="a scale-set instance deleted by scale-in (terminate notification)",
        ),
    )
}


class UnknownDrill(AdminError, LookupError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no drill is named {name!r}; drills: {', '.join(DRILLS)}")


def drill_request(name: str, vm: str | None, dev: bool) -> dict[str, object]:
    """The admin API's schedule request for a drill (its timings, wording, source)."""
    drill = DRILLS.get(name)
    if drill is None:
        raise UnknownDrill(name)
    notice = drill.dev_notice if dev else drill.notice
    request: dict[str, object] = {
        "type": drill.type,
        "notBefore": f"+{int(notice)}s",
        "durationInSeconds": drill.duration,
        "description": drill.description,
        "eventSource": drill.source,
    }
    cancel = drill.dev_cancel_after if dev else drill.cancel_after
    if cancel is not None:
        request["cancelAt"] = f"+{int(cancel)}s"
    if dev:
        request["completeAfter"] = 5  # listed 5 s after its duration instead of the default
    if vm is not None:
        request["target"] = {"vm": vm}
    return request
