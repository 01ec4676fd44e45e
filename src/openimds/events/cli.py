"""`openimds events ...`: schedule, list, start, complete, cancel and load scheduled events
on a running server, through its admin API."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click

from openimds.cli.options import (
    JSON_OPTION,
    SECONDS,
    AdminTarget,
    admin_call,
    admin_options,
)


def _when(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ")


def _table(events: list[dict[str, Any]]) -> str:
    if not events:
        return "no live events"
    rows = [("EVENT ID", "TYPE", "STATE", "NOT BEFORE", "RESOURCES", "APPROVED")]
    for e in events:
        approved = ", ".join(f"{a['vm']} at {_when(a['at'])}" for a in e["approvals"]) or "-"
        not_before = "" if e["state"] == "Started" else _when(e["notBefore"])
        rows.append(
            (e["eventId"], e["type"], e["state"], not_before, ",".join(e["resources"]), approved)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


@click.group("events")
def events() -> None:
    """Scheduled events of a running server (Freeze, Reboot, Redeploy, Preempt, Terminate)."""


@events.command("schedule")
@click.argument(
    "event_type", type=click.Choice(["Freeze", "Reboot", "Redeploy", "Preempt", "Terminate"])
)
@click.option("--vm", help="One VM, by name.")
@click.option("--scale-set", help="Every VM of a scale set (compute.vmScaleSetName).")
@click.option("--availability-set", help="Every VM of an availability set.")
@click.option("--placement-group", help="Every VM of a placement group (compute.placementGroupId).")
@click.option("--tag", help="Every VM with this tag, NAME=VALUE.")
@click.option("--not-before", help="+5m, +30s, RFC 3339 or RFC 1123. Default: the type's notice.")
@click.option("--at", "at", help="When the event is posted (default now); same forms.")
@click.option("--duration", type=int, help="DurationInSeconds (-1 unknown, 0 no impact).")
@click.option("--description", help="Description text.")
@click.option("--source", type=click.Choice(["Platform", "User"]), help="EventSource.")
@click.option("--complete-after", type=SECONDS, help="Seconds Started lasts after the duration.")
@click.option("--approval", type=click.Choice(["any", "all"]), help="Approvals needed to start.")
@click.option("--id", "event_id", help="Use this EventId instead of a random GUID.")
@admin_options
@JSON_OPTION
def schedule(event_type: str, admin: AdminTarget, as_json: bool, **opts: Any) -> None:
    """Schedule an event of EVENT_TYPE for the selected VMs."""
    targets = {
        "vm": opts.pop("vm"),
        "scaleSet": opts.pop("scale_set"),
        "availabilitySet": opts.pop("availability_set"),
        "placementGroup": opts.pop("placement_group"),
        "tag": opts.pop("tag"),
    }
    chosen = {k: v for k, v in targets.items() if v is not None}
    if len(chosen) > 1:
        raise click.UsageError(
            "give one of --vm, --scale-set, --availability-set, --placement-group, --tag"
        )
    names = {
        "not_before": "notBefore",
        "at": "at",
        "duration": "durationInSeconds",
        "description": "description",
        "source": "eventSource",
        "complete_after": "completeAfter",
        "approval": "approval",
        "event_id": "eventId",
    }
    body: dict[str, Any] = {"type": event_type}
    if chosen:
        body["target"] = chosen
    body.update({names[k]: v for k, v in opts.items() if v is not None})
    answer = admin_call(admin, "POST", "/events", body)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for event in answer["events"]:
        click.echo(event["eventId"])


@events.command("list")
@admin_options
@JSON_OPTION
def list_events(admin: AdminTarget, as_json: bool) -> None:
    """Live events: state, NotBefore, affected VMs, who approved and when."""
    answer = admin_call(admin, "GET", "/events")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(_table(answer["events"]))


def _action(name: str, help_text: str) -> None:
    @events.command(name, help=help_text)
    @click.argument("event_id")
    @admin_options
    def command(event_id: str, admin: AdminTarget) -> None:
        # Quoted: an id holding `/` or `?` must not reach another route.
        answer = admin_call(admin, "POST", f"/events/{quote(event_id, safe='')}/{name}")
        after = answer.get("event")
        click.echo(f"{event_id}: {'removed' if after is None else after['state']}")


_action("start", 'Start EVENT_ID now (NotBefore becomes "").')
_action("complete", "Remove the Started event EVENT_ID now.")
_action("cancel", "Cancel EVENT_ID: a Pending or Scheduled event is removed.")


@events.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@admin_options
@JSON_OPTION
def load(path: str, admin: AdminTarget, as_json: bool) -> None:
    """Load a scenario file (YAML or JSON); its relative times count from now."""
    from openimds.config import ConfigError
    from openimds.config.loading import read_document

    try:
        data = read_document(path)
    except ConfigError as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(2)
    answer = admin_call(admin, "POST", "/events/scenario", data)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"loaded {len(answer['events'])} event(s)")
    for event in answer["events"]:
        click.echo(f"{event['eventId']}  {event['type']}  {event['state']}")


@events.command("drill")
@click.argument("name", required=False)
@click.option("--dev", is_flag=True, help="Compressed timings (seconds of notice) for CI.")
@click.option("--vm", help="The VM (default: the only one).")
@admin_options
@JSON_OPTION
def drill(name: str | None, dev: bool, vm: str | None, admin: AdminTarget, as_json: bool) -> None:
    """Run the maintenance drill NAME (without NAME: list the drills)."""
    if name is None:
        for d in admin_call(admin, "GET", "/events/drills")["drills"]:
            notice = f"{d['notice']:g}s notice ({d['devNotice']:g}s with --dev)"
            click.echo(f"{d['name']:<20} {d['type']:<9} {notice:<28} {d['summary']}")
        return
    from openimds.cli.admin_client import AdminCallFailed, request

    body = {"drill": name, "dev": dev, **({"vm": vm} if vm else {})}
    try:
        answer = request(admin.config(), "POST", "/events/drill", json=body)
    except AdminCallFailed as exc:
        # The API names its body's field; here the same thing is the --vm flag.
        text = str(exc).replace("vm: required", "--vm: required", 1)
        click.echo(f"openimds: {text}", err=True)
        sys.exit(2 if text != str(exc) else 1)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for event in answer["events"]:
        click.echo(f"{event['eventId']}  {event['type']}  NotBefore {_when(event['notBefore'])}")


COMMANDS = (events,)
