"""How scheduled events sit in the state store: records of our own kinds, JSON values.

- `scheduled_event/<id>`: one live event (state, times, approvals). Removed with the event.
- `scheduled_event_incarnation/<vm>`: a VM's DocumentIncarnation; kept forever, so it never
  goes back, even for a VM whose events are all gone.
- `scheduled_event_scenario/<sha256>`: a scenario file already loaded at start.
- `scheduled_event_book/version`: a number that every change raises by one, written in
  the same batch under the condition that it was the number the writer read: the
  compare-and-set that keeps nodes sharing a store from overwriting each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

from openimds.core.scheduled_events import (
    Approval,
    Event,
    EventBook,
    EventSource,
    EventType,
    Policy,
    State,
)
from openimds.store import Delete, Put, Store, decoding

EVENT = "scheduled_event"
INCARNATION = "scheduled_event_incarnation"
SCENARIO = "scheduled_event_scenario"
BOOK = "scheduled_event_book"
VERSION = "version"


def encode(event: Event) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "vms": list(event.vms),
            "resources": list(event.resources),
            "posted_at": event.posted_at,
            "not_before": event.not_before,
            "duration": event.duration,
            "description": event.description,
            "source": event.source,
            "hold": event.hold,
            "policy": event.policy,
            "state": event.state,
            "started_at": event.started_at,
            "approvals": [[a.vm, a.at] for a in event.approvals],
            "cancel_at": event.cancel_at,
        },
        separators=(",", ":"),
    )


def decode(text: str) -> Event:
    """An event as stored; ValueError (or KeyError, TypeError) when it is not one."""
    data: dict[str, Any] = json.loads(text)
    # Values outside these sets would fail later, in the state machine, not here.
    closed = (("type", EventType), ("source", EventSource), ("policy", Policy), ("state", State))
    for name, allowed in closed:
        _one_of(name, data[name], allowed)
    return Event(
        id=data["id"],
        type=data["type"],
        vms=tuple(data["vms"]),
        resources=tuple(data["resources"]),
        posted_at=float(data["posted_at"]),
        not_before=float(data["not_before"]),
        duration=int(data["duration"]),
        description=data["description"],
        source=data["source"],
        hold=float(data["hold"]),
        policy=data["policy"],
        state=data["state"],
        started_at=None if data["started_at"] is None else float(data["started_at"]),
        approvals=tuple(Approval(str(vm), float(at)) for vm, at in data["approvals"]),
        # Absent from records written before planned cancels existed.
        cancel_at=None if data.get("cancel_at") is None else float(data["cancel_at"]),
    )


def _one_of(name: str, value: object, allowed: object) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"{name} {value!r} is not one of {', '.join(get_args(allowed))}")


def load(store: Store) -> EventBook:
    """Every stored event and incarnation; CorruptRecord names one that cannot be read."""
    events = {}
    for key, value in store.list_records(EVENT):
        with decoding(EVENT, key):
            events[key] = decode(value)
    incarnations = {}
    for key, value in store.list_records(INCARNATION):
        with decoding(INCARNATION, key):
            incarnations[key] = int(value)
    return EventBook(events, incarnations)


def changes(old: EventBook, new: EventBook) -> Sequence[Put | Delete]:
    """The writes that turn the stored `old` into `new`."""
    ops: list[Put | Delete] = []
    for event_id, event in new.events.items():
        if old.events.get(event_id) != event:
            ops.append(Put(EVENT, event_id, encode(event)))
    ops.extend(Delete(EVENT, event_id) for event_id in old.events if event_id not in new.events)
    for vm, value in new.incarnations.items():
        if old.incarnations.get(vm) != value:
            ops.append(Put(INCARNATION, vm, str(value)))
    return ops
