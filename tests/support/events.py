"""Scheduled events for the pure core's tests: one event as Azure's sample describes it, and
a book with events posted."""

from __future__ import annotations

from openimds.core.scheduled_events import Event, EventBook, EventType, Policy, post

T0 = 1_764_000_000.0  # Mon, 24 Nov 2025 16:00:00 GMT


def event(
    event_id: str = "E1",
    *,
    vms: tuple[str, ...] = ("vm-a",),
    at: float = T0,
    notice: float = 900.0,
    duration: int = 5,
    hold: float = 60.0,
    policy: Policy = "all",
    event_type: EventType = "Reboot",
) -> Event:
    return Event(
        id=event_id,
        type=event_type,
        vms=vms,
        resources=tuple(f"name-{v}" for v in vms),
        posted_at=at,
        not_before=at + notice,
        duration=duration,
        description="Host server is undergoing maintenance.",
        source="Platform",
        hold=hold,
        policy=policy,
    )


def posted(*events: Event, now: float = T0) -> EventBook:
    book = EventBook()
    for e in events:
        book = post(book, e, now).book
    return book
