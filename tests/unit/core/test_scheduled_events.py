"""Scheduled events in the pure core: the transition table, approvals, incarnations, what
is due next. Virtual clock."""

from __future__ import annotations

from dataclasses import replace
from itertools import product
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openimds.core.scheduled_events import (
    TRANSITIONS,
    DuplicateEvent,
    EventBook,
    InvalidTransition,
    State,
    Trigger,
    UnknownEvent,
    advance,
    approve,
    command,
    post,
    transition,
    visible_ids,
)
from tests.support.events import T0, event, posted

# -- the transition table -------------------------------------------------------------------
STATES: tuple[State, ...] = get_args(State)
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)


@pytest.mark.parametrize(("state", "trigger"), list(product(STATES, TRIGGERS)))
def test_every_pair_follows_the_table(state: State, trigger: Trigger) -> None:
    start = replace(event(), state=state)
    if (state, trigger) not in TRANSITIONS:
        with pytest.raises(InvalidTransition):
            transition(start, trigger, T0)
        return
    after = transition(start, trigger, T0 + 1)
    expected = TRANSITIONS[(state, trigger)]
    assert (after.state if after else None) == expected
    if expected == "Started" and state != "Started":
        assert after is not None and after.started_at == T0 + 1


def test_full_life_by_the_clock() -> None:
    book = post(EventBook(), event(at=T0 + 10), T0).book
    assert book.events["E1"].state == "Pending"
    assert book.for_vm("vm-a") == [] and book.incarnation("vm-a") == 0
    book = advance(book, T0 + 10).book
    assert book.events["E1"].state == "Scheduled" and book.incarnation("vm-a") == 1
    book = advance(book, T0 + 909).book
    assert book.events["E1"].state == "Scheduled" and book.incarnation("vm-a") == 1
    result = advance(book, T0 + 910)
    started = result.book.events["E1"]
    assert started.state == "Started" and started.started_at == T0 + 910
    assert [s.trigger for s in result.steps] == ["deadline"]
    assert result.book.incarnation("vm-a") == 2
    # Removed duration (5) + hold (60) after the start, never shown as Completed.
    assert "E1" in advance(result.book, T0 + 974.9).book.events
    gone = advance(result.book, T0 + 975)
    assert gone.book.events == {} and gone.book.incarnation("vm-a") == 3
    assert [s.trigger for s in gone.steps] == ["finish"]


def test_deadline_start_time_does_not_depend_on_the_tick() -> None:
    book = posted(event())
    late = advance(book, T0 + 930).book
    assert late.events["E1"].started_at == T0 + 900
    fine = book
    for second in range(1, 931):
        fine = advance(fine, T0 + second).book
    assert fine == late


def test_catching_up_counts_one_change_per_observation() -> None:
    book = posted(event())
    # Down for an hour: the event started and finished meanwhile; the VM sees one change.
    after = advance(book, T0 + 3600)
    assert [s.trigger for s in after.steps] == ["deadline", "finish"]
    assert after.book.events == {} and after.book.incarnation("vm-a") == 2
    # Posted, started and removed before anyone could see it: the document never changed.
    quick = post(EventBook(), event(at=T0, notice=0, duration=0, hold=0), T0 + 5)
    assert quick.book.events == {} and quick.book.incarnation("vm-a") == 0


def test_any_policy_starts_on_one_vms_approval() -> None:
    book = posted(event(vms=("vm-a", "vm-b"), policy="any"))
    result = approve(book, "vm-b", ["E1"], T0 + 3)
    started = result.book.events["E1"]
    assert started.state == "Started" and started.started_at == T0 + 3
    assert [(a.vm, a.at) for a in started.approvals] == [("vm-b", T0 + 3)]
    assert result.book.incarnation("vm-a") == 2 and result.book.incarnation("vm-b") == 2


def test_all_policy_waits_for_every_vm() -> None:
    book = posted(event(vms=("vm-a", "vm-b")))
    first = approve(book, "vm-a", ["E1"], T0 + 1).book
    assert first.events["E1"].state == "Scheduled"
    assert first.incarnation("vm-a") == 1, "an approval changes nothing a document shows"
    again = approve(first, "vm-a", ["E1"], T0 + 2).book
    assert [a.vm for a in again.events["E1"].approvals] == ["vm-a"]
    assert again.events["E1"].approvals[0].at == T0 + 1
    second = approve(again, "vm-b", ["E1"], T0 + 4).book
    assert second.events["E1"].state == "Started" and second.events["E1"].started_at == T0 + 4
    assert second.incarnation("vm-a") == 2 and second.incarnation("vm-b") == 2


def test_approving_a_started_event_is_accepted_and_changes_nothing_shown() -> None:
    book = command(posted(event()), "E1", "start", T0 + 1).book
    again = approve(book, "vm-a", ["E1"], T0 + 2)
    assert again.book.events["E1"].state == "Started"
    assert again.book.incarnation("vm-a") == book.incarnation("vm-a")


@pytest.mark.parametrize(
    ("vm", "ids"),
    [
        ("vm-a", ["nope"]),
        ("vm-a", ["E1", "nope"]),  # all or nothing
        ("vm-b", ["E1"]),  # not one of its events
        ("vm-a", ["E2"]),  # not posted yet
    ],
)
def test_unknown_ids_approve_nothing(vm: str, ids: list[str]) -> None:
    book = posted(event(), event("E2", at=T0 + 50))
    with pytest.raises(UnknownEvent):
        approve(book, vm, ids, T0 + 1)
    assert book.events["E1"].approvals == ()


def test_ids_match_without_regard_to_case() -> None:
    book = posted(event("AbC-1"))
    resolved = visible_ids(book, "vm-a", ["abc-1"])
    assert resolved == ("AbC-1",)
    assert approve(book, "vm-a", resolved, T0 + 1).book.events["AbC-1"].state == "Started"


@pytest.mark.parametrize(
    ("vm", "ids"),
    [("vm-a", ["nope"]), ("vm-a", ["e1", "nope"]), ("vm-b", ["e1"]), ("vm-a", ["e2"])],
)
def test_visible_ids_refuse_what_the_vm_cannot_see(vm: str, ids: list[str]) -> None:
    book = posted(event(), event("E2", at=T0 + 50))
    with pytest.raises(UnknownEvent):
        visible_ids(book, vm, ids)


def test_cancel_scheduled_and_pending() -> None:
    book = posted(event(), event("E2", at=T0 + 100))
    cancelled = command(book, "E1", "cancel", T0 + 1).book
    assert "E1" not in cancelled.events and cancelled.incarnation("vm-a") == 2
    pending_gone = command(cancelled, "E2", "cancel", T0 + 2).book
    assert pending_gone.events == {} and pending_gone.incarnation("vm-a") == 2


def test_operator_commands_and_their_limits() -> None:
    book = posted(event())
    with pytest.raises(InvalidTransition):
        command(book, "E1", "complete", T0 + 1)
    started = command(book, "E1", "start", T0 + 1).book
    assert started.events["E1"].started_at == T0 + 1
    with pytest.raises(InvalidTransition):
        command(started, "E1", "cancel", T0 + 2)
    with pytest.raises(InvalidTransition):
        command(started, "E1", "start", T0 + 2)
    done = command(started, "E1", "complete", T0 + 2).book
    assert done.events == {} and done.incarnation("vm-a") == 3
    with pytest.raises(UnknownEvent):
        command(done, "E1", "complete", T0 + 3)


def test_start_of_a_pending_event_posts_it_started() -> None:
    book = post(EventBook(), event(at=T0 + 100), T0).book
    result = command(book, "E1", "start", T0 + 1)
    assert result.book.events["E1"].state == "Started"
    assert result.book.incarnation("vm-a") == 1  # one change: it appeared, started


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(DuplicateEvent):
        post(posted(event()), event(), T0)


def test_events_affect_only_their_vms() -> None:
    book = posted(event(vms=("vm-a",)), event("E2", vms=("vm-b",)))
    assert [e.id for e in book.for_vm("vm-a")] == ["E1"]
    assert book.incarnation("vm-a") == 1 and book.incarnation("vm-b") == 1
    book = command(book, "E2", "cancel", T0 + 1).book
    assert book.incarnation("vm-a") == 1 and book.incarnation("vm-b") == 2


COMMANDS: dict[str, Trigger] = {"start": "start", "complete": "complete", "cancel": "cancel"}
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["advance", "approve", "start", "complete", "cancel", "post"]),
        st.integers(0, 3),
        st.floats(0, 400),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_incarnation_goes_up_exactly_when_the_document_changes(
    ops: list[tuple[str, int, float]],
) -> None:
    book, now = EventBook(), T0
    for op, n, dt in ops:
        now += dt
        before = {vm: _shown(book, vm) for vm in ("vm-a", "vm-b")}
        try:
            if op == "post":
                new = event(f"E{n}", vms=("vm-a", "vm-b")[: 1 + n % 2], at=now + dt, notice=dt)
                book = post(book, new, now).book
            elif op == "approve":
                book = approve(book, "vm-a", [f"E{n}"], now).book
            elif op == "advance":
                book = advance(book, now).book
            else:
                book = command(book, f"E{n}", COMMANDS[op], now).book
        except (UnknownEvent, InvalidTransition, DuplicateEvent):
            pass
        for vm in ("vm-a", "vm-b"):
            bumped = book.incarnation(vm) - before[vm][1]
            assert bumped in (0, 1)
            assert (bumped == 1) == (_shown(book, vm)[0] != before[vm][0])


def _shown(book: EventBook, vm: str) -> tuple[object, int]:
    return [(e.id, e.state) for e in book.for_vm(vm)], book.incarnation(vm)


def test_next_due_is_the_earliest_time_driven_step() -> None:
    from openimds.core.scheduled_events import next_due

    assert next_due(EventBook()) == float("inf")
    book = post(EventBook(), event(at=T0 + 50), T0).book
    assert next_due(book) == T0 + 50  # posting
    book = posted(event())
    assert next_due(book) == T0 + 900  # NotBefore
    book = command(book, "E1", "start", T0 + 1).book
    assert next_due(book) == T0 + 1 + 5 + 60  # removal
    assert advance(book, next_due(book) - 0.001).book is book
