"""Scheduled events: the life of an event as a transition table (docs/scheduled-events.md).

Rules
1. An event is Pending until its post time, then Scheduled: it appears in the documents of
   the VMs it affects (its `vms`), with `NotBefore` set.
2. A Scheduled event becomes Started when the approval policy is met ("all", the default:
   every affected VM approved, as Azure's lifecycle has it; "any": one affected VM's
   approval applies to all Resources), when `NotBefore` passes, or when an operator starts
   it. `NotBefore` is then "", as in Azure's lifecycle.
3. A Started event is removed `duration + hold` seconds after it started (DurationInSeconds
   is the impact; `hold` the clean-up lag, about 10 min on Azure). There is never a
   Completed status: finished events just disappear, as on Azure.
4. Cancel removes a Pending or Scheduled event at once, as Azure's lifecycle describes.
5. A VM's DocumentIncarnation goes up by one whenever a change leaves its document showing
   something else than before (an event appeared, started or disappeared); approvals
   change nothing it shows. Incarnations never go down.
6. An event may carry a `cancel_at` before its NotBefore: the platform withdraws it then
   (a cancel at that moment, as by an operator), unless it started earlier.
7. Time-driven steps take effect at the moment they were due (a deadline start happens at
   NotBefore, not at the tick that noticed it), so the state does not depend on how often
   it is advanced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

EventType = Literal["Freeze", "Reboot", "Redeploy", "Preempt", "Terminate"]
EventSource = Literal["Platform", "User"]
Policy = Literal["any", "all"]
State = Literal["Pending", "Scheduled", "Started"]
Trigger = Literal[
    "post", "approve", "approved", "deadline", "start", "finish", "complete", "cancel"
]

EVENT_TYPES: Final[tuple[EventType, ...]] = ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")

# (state, trigger) -> next state; None means the event is removed.
TRANSITIONS: Final[Mapping[tuple[State, Trigger], State | None]] = {
    ("Pending", "post"): "Scheduled",
    ("Pending", "start"): "Started",  # posted already started, as Azure posts a hardware failure
    ("Pending", "cancel"): None,
    ("Scheduled", "approve"): "Scheduled",
    ("Scheduled", "approved"): "Started",
    ("Scheduled", "deadline"): "Started",
    ("Scheduled", "start"): "Started",
    ("Scheduled", "cancel"): None,
    ("Started", "approve"): "Started",  # Azure: a valid EventId gets 200 even if approved before
    ("Started", "finish"): None,
    ("Started", "complete"): None,
}

# What a VM's document shows of an event in each state (rule 5).
_VISIBLE: Final[Mapping[State, bool]] = {"Pending": False, "Scheduled": True, "Started": True}


class InvalidTransition(Exception):
    def __init__(self, event: Event, trigger: Trigger) -> None:
        super().__init__(f"event {event.id} is {event.state}; cannot {trigger} it")
        self.event = event
        self.trigger = trigger


class DuplicateEvent(ValueError):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"an event with id {event_id} exists")
        self.event_id = event_id


class UnknownEvent(KeyError):
    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id

    def __str__(self) -> str:
        return f"no live event {self.event_id}"


@dataclass(frozen=True, slots=True)
class Approval:
    vm: str
    at: float


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: EventType
    vms: tuple[str, ...]  # ids of the affected VMs
    resources: tuple[str, ...]  # their names, as `Resources` lists them
    posted_at: float
    not_before: float
    duration: int  # DurationInSeconds: 0 no impact, -1 unknown
    description: str
    source: EventSource
    hold: float  # seconds a Started event stays listed after its duration
    policy: Policy = "all"
    state: State = "Pending"
    started_at: float | None = None
    approvals: tuple[Approval, ...] = ()
    cancel_at: float | None = None  # rule 6

    @property
    def removal_at(self) -> float | None:
        if self.started_at is None:
            return None
        return self.started_at + max(self.duration, 0) + self.hold

    def approved_by(self, vm: str) -> bool:
        return any(a.vm == vm for a in self.approvals)

    def policy_met(self) -> bool:
        approvers = {a.vm for a in self.approvals}
        if self.policy == "any":
            return bool(approvers & set(self.vms))
        return set(self.vms) <= approvers


@dataclass(frozen=True, slots=True)
class Step:
    """One transition: the event before, what caused it, the event after (None: removed)."""

    before: Event
    trigger: Trigger
    after: Event | None
    at: float

    @property
    def visible_change(self) -> bool:
        return _shown(self.before) != _shown(self.after)


def _shown(event: Event | None) -> State | None:
    """The status a document shows for an event, None when it is not listed."""
    if event is None or not _VISIBLE[event.state]:
        return None
    return event.state


@dataclass(frozen=True, slots=True)
class EventBook:
    """All live events and each VM's DocumentIncarnation. Treated as immutable."""

    events: Mapping[str, Event] = field(default_factory=dict)
    incarnations: Mapping[str, int] = field(default_factory=dict)

    def for_vm(self, vm: str) -> list[Event]:
        """The events a VM's document lists, oldest post first."""
        shown = [e for e in self.events.values() if _VISIBLE[e.state] and vm in e.vms]
        return sorted(shown, key=lambda e: (e.posted_at, e.id))

    def incarnation(self, vm: str) -> int:
        return self.incarnations.get(vm, 0)


@dataclass(frozen=True, slots=True)
class Result:
    book: EventBook
    steps: tuple[Step, ...] = ()


def transition(event: Event, trigger: Trigger, at: float) -> Event | None:
    """Apply one row of the table; InvalidTransition if the row does not exist."""
    key = (event.state, trigger)
    if key not in TRANSITIONS:
        raise InvalidTransition(event, trigger)
    target = TRANSITIONS[key]
    if target is None:
        return None
    if target == "Started" and event.state != "Started":
        return replace(event, state="Started", started_at=at)
    return replace(event, state=target)


def _due(event: Event, now: float) -> tuple[Trigger, float] | None:
    """The time-driven step an event is due for at `now`, and when it fell due (rule 7)."""
    if event.state == "Pending" and event.posted_at <= now:
        return "post", event.posted_at
    cancel = event.cancel_at
    if event.state == "Scheduled" and cancel is not None and cancel <= min(now, event.not_before):
        return "cancel", cancel
    if event.state == "Scheduled" and event.not_before <= now:
        return "deadline", event.not_before
    removal = event.removal_at
    if event.state == "Started" and removal is not None and removal <= now:
        return "finish", removal
    return None


def _shows(book: EventBook, vm: str) -> tuple[tuple[str, State], ...]:
    # Everything else about a listed event is fixed when it is posted.
    return tuple((e.id, e.state) for e in book.for_vm(vm))


def _commit(book: EventBook, steps: list[Step]) -> Result:
    """New book from the steps; each VM whose document now shows something else goes up
    by one (rule 5), however many steps it took to get there."""
    events = dict(book.events)
    touched: set[str] = set()
    for step in steps:
        if step.after is None:
            events.pop(step.before.id, None)
        else:
            events[step.after.id] = step.after
        if step.visible_change:
            touched.update(step.before.vms)
    incarnations = dict(book.incarnations)
    new = EventBook(events, incarnations)
    for vm in touched:
        if _shows(book, vm) != _shows(new, vm):
            incarnations[vm] = incarnations.get(vm, 0) + 1
    return Result(new, tuple(steps))


def _settle(event: Event, now: float, steps: list[Step]) -> Event | None:
    """Run every time-driven step an event is due for, in order."""
    current: Event | None = event
    while current is not None:
        due = _due(current, now)
        if due is None:
            break
        trigger, at = due
        after = transition(current, trigger, at)
        steps.append(Step(current, trigger, after, at))
        current = after
    return current


def next_due(book: EventBook) -> float:
    """The earliest time at which `advance` would change anything (inf: never)."""
    times = [due[1] for e in book.events.values() if (due := _due(e, float("inf")))]
    return min(times, default=float("inf"))


def advance(book: EventBook, now: float) -> Result:
    """Bring every event up to `now`."""
    steps: list[Step] = []
    for event in book.events.values():
        _settle(event, now, steps)
    if not steps:
        return Result(book)
    return _commit(book, steps)


def post(book: EventBook, event: Event, now: float) -> Result:
    """Add a new (Pending) event, then advance it to `now`."""
    if event.id in book.events:
        raise DuplicateEvent(event.id)
    added = EventBook({**book.events, event.id: replace(event, state="Pending")}, book.incarnations)
    return advance(added, now)


def visible_ids(book: EventBook, vm: str, event_ids: Iterable[str]) -> tuple[str, ...]:
    """The stored ids of the events `vm` can see, matched without regard to case, in the
    order given. All or nothing: an id the VM cannot see raises UnknownEvent."""
    shown = {event.id.lower(): event.id for event in book.for_vm(vm)}
    resolved: list[str] = []
    for raw in event_ids:
        found = shown.get(raw.lower())
        if found is None:
            raise UnknownEvent(raw)
        resolved.append(found)
    return tuple(resolved)


def approve(book: EventBook, vm: str, event_ids: Iterable[str], now: float) -> Result:
    """Record `vm`'s approval of events, starting those whose policy is met. The ids are
    stored ids, as the endpoint resolved them from the POST (`visible_ids`); all or
    nothing: an id that is not (or no longer) one of the VM's live events raises
    UnknownEvent and nothing changes."""
    caught_up = advance(book, now)
    resolved = list(event_ids)
    for event_id in resolved:
        event = caught_up.book.events.get(event_id)
        if event is None or vm not in event.vms or not _VISIBLE[event.state]:
            raise UnknownEvent(event_id)
    steps = list(caught_up.steps)
    events = dict(caught_up.book.events)
    for event_id in dict.fromkeys(resolved):
        event = events[event_id]
        after = transition(event, "approve", now)
        assert after is not None  # approve never removes
        if not after.approved_by(vm):
            after = replace(after, approvals=(*after.approvals, Approval(vm, now)))
        steps.append(Step(event, "approve", after, now))
        if after.state == "Scheduled" and after.policy_met():
            started = transition(after, "approved", now)
            assert started is not None
            steps.append(Step(after, "approved", started, now))
            after = started
        events[event_id] = after
    return _commit(book, steps)


def command(book: EventBook, event_id: str, trigger: Trigger, now: float) -> Result:
    """An operator's start, complete or cancel; the event is first advanced to `now`."""
    caught_up = advance(book, now)
    event = caught_up.book.events.get(event_id)
    if event is None:
        raise UnknownEvent(event_id)
    steps = list(caught_up.steps)
    after = transition(event, trigger, now)
    steps.append(Step(event, trigger, after, now))
    if after is not None:
        # Starting an event whose removal is already due removes it in the same step.
        _settle(after, now, steps)
    return _commit(book, steps)
