"""Scheduled events in the pure core: the transition table, approvals, incarnations, the
document per api-version and the POST rules (imds-reference.md 8, 2.2). Virtual clock."""

from __future__ import annotations

import json
from email.utils import formatdate
from itertools import product
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openimds.core.app import build_service
from openimds.core.http import Request
from openimds.core.inventory import VmSnapshot
from openimds.core.scheduled_events import (
    TRANSITIONS,
    DuplicateEvent,
    Event,
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
from openimds.core.scheduled_events_api import (
    Approve,
    ScheduledEventsEndpoint,
    document,
    events_version,
)
from openimds.core.timestamps import rfc1123

T0 = 1_764_000_000.0  # Mon, 24 Nov 2025 16:00:00 GMT
SE_NEWEST = ["2020-07-01", "2019-08-01", "2019-04-01"]


def event(
    event_id: str = "E1",
    *,
    vms: tuple[str, ...] = ("vm-a",),
    at: float = T0,
    notice: float = 900.0,
    duration: int = 5,
    hold: float = 60.0,
    policy: str = "all",
    event_type: str = "Reboot",
) -> Event:
    return Event(
        id=event_id,
        type=event_type,  # type: ignore[arg-type]
        vms=vms,
        resources=tuple(f"name-{v}" for v in vms),
        posted_at=at,
        not_before=at + notice,
        duration=duration,
        description="Host server is undergoing maintenance.",
        source="Platform",
        hold=hold,
        policy=policy,  # type: ignore[arg-type]
    )


def posted(*events: Event, now: float = T0) -> EventBook:
    book = EventBook()
    for e in events:
        book = post(book, e, now).book
    return book


# -- the transition table -------------------------------------------------------------------
STATES: tuple[State, ...] = get_args(State)
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)


@pytest.mark.parametrize(("state", "trigger"), list(product(STATES, TRIGGERS)))
def test_every_pair_follows_the_table(state: State, trigger: Trigger) -> None:
    start = Event(**{**_fields(event()), "state": state})
    if (state, trigger) not in TRANSITIONS:
        with pytest.raises(InvalidTransition):
            transition(start, trigger, T0)
        return
    after = transition(start, trigger, T0 + 1)
    expected = TRANSITIONS[(state, trigger)]
    assert (after.state if after else None) == expected
    if expected == "Started" and state != "Started":
        assert after is not None and after.started_at == T0 + 1


def _fields(e: Event) -> dict[str, object]:
    return {name: getattr(e, name) for name in Event.__dataclass_fields__}


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
                book = command(book, f"E{n}", op, now).book  # type: ignore[arg-type]
        except (UnknownEvent, InvalidTransition, DuplicateEvent):
            pass
        for vm in ("vm-a", "vm-b"):
            bumped = book.incarnation(vm) - before[vm][1]
            assert bumped in (0, 1)
            assert (bumped == 1) == (_shown(book, vm)[0] != before[vm][0])


def _shown(book: EventBook, vm: str) -> tuple[object, int]:
    return [(e.id, e.state) for e in book.for_vm(vm)], book.incarnation(vm)


# -- the document -----------------------------------------------------------------------------
def test_rfc1123_matches_the_standard_library() -> None:
    for epoch in (0, 951_782_400, 1_474_309_787, 4_102_444_799, T0, T0 + 86_399.9):
        assert rfc1123(epoch) == formatdate(int(epoch), usegmt=True)
    assert rfc1123(1_474_309_787) == "Mon, 19 Sep 2016 18:29:47 GMT"  # the 8 sample


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("2017-08-01", []),
        ("2017-11-01", []),
        ("2019-01-01", []),
        ("2019-04-01", ["Description"]),
        ("2019-08-01", ["Description", "EventSource"]),
        ("2020-07-01", ["Description", "EventSource", "DurationInSeconds"]),
        # General versions: the nearest SE version at or below (2.2 INFERRED).
        ("2019-06-01", ["Description"]),
        ("2019-08-15", ["Description", "EventSource"]),
        ("2025-04-07", ["Description", "EventSource", "DurationInSeconds"]),
    ],
)
def test_fields_are_gated_by_version(version: str, keys: list[str]) -> None:
    doc = document(posted(event()), "vm-a", version)
    base = ["EventId", "EventType", "ResourceType", "Resources", "EventStatus", "NotBefore"]
    assert doc["DocumentIncarnation"] == 1
    (only,) = doc["Events"]  # type: ignore[misc]
    assert list(only) == base + keys
    assert only["NotBefore"] == "Mon, 24 Nov 2025 16:15:00 GMT"
    assert only["Resources"] == ["name-vm-a"] and only["ResourceType"] == "VirtualMachine"
    if "DurationInSeconds" in keys:
        assert only["DurationInSeconds"] == 5


@pytest.mark.parametrize(
    ("event_type", "first"),
    [("Freeze", "2017-03-01"), ("Preempt", "2017-11-01"), ("Terminate", "2019-01-01")],
)
def test_event_types_are_gated_by_version(event_type: str, first: str) -> None:
    book = posted(event(event_type=event_type))
    from openimds.core.versions import SCHEDULED_EVENTS_VERSIONS

    for version in SCHEDULED_EVENTS_VERSIONS:
        shown = document(book, "vm-a", version)["Events"]
        assert bool(shown) == (version >= first), version


def test_started_document_and_preview_names() -> None:
    book = command(posted(event()), "E1", "start", T0 + 1).book
    (shown,) = document(book, "vm-a", "2020-07-01")["Events"]  # type: ignore[misc]
    assert shown["EventStatus"] == "Started" and shown["NotBefore"] == ""
    (preview,) = document(book, "vm-a", "2017-03-01")["Events"]  # type: ignore[misc]
    assert preview["Resources"] == ["_name-vm-a"]  # 2.2: before 2017-08-01


def test_empty_document() -> None:
    assert document(EventBook(), "vm-a", "2020-07-01") == {
        "DocumentIncarnation": 0,
        "Events": [],
    }


@pytest.mark.parametrize("version", ["latest", "2019-04-02", "2017-01-01", "2020-07-01 ", ""])
def test_unknown_versions(version: str) -> None:
    with pytest.raises(Exception, match="api-version is invalid"):
        events_version(version)


# -- the endpoint over the dispatcher ------------------------------------------------------
VM_A = VmSnapshot(id="vm-a", name="vm-a", revision=1, instance={})


class Harness:
    def __init__(self, book: EventBook) -> None:
        self.book = book
        self.asked: list[float] = []
        endpoint = ScheduledEventsEndpoint(self.book_at)
        self.service = build_service([("/metadata/scheduledevents", endpoint)])

    def book_at(self, now: float) -> EventBook:
        self.asked.append(now)
        self.book = advance(self.book, now).book
        return self.book

    def call(
        self,
        method: str = "GET",
        query: str = "api-version=2020-07-01",
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (("metadata", "true"),),
        now: float = T0 + 1,
    ):  # type: ignore[no-untyped-def]
        pairs = tuple(tuple(p.split("=", 1)) for p in query.split("&") if p)
        request = Request(method, "/metadata/scheduledevents", pairs, headers, body)  # type: ignore[arg-type]
        return self.service.handle(request, VM_A, now)


def test_get_reads_the_book_at_the_request_time() -> None:
    harness = Harness(posted(event(notice=10)))
    response = harness.call(now=T0 + 11)
    assert harness.asked == [T0 + 11]
    assert response.status == 200 and not response.cacheable
    body = json.loads(response.body)
    assert body["Events"][0]["EventStatus"] == "Started"
    assert isinstance(body["DocumentIncarnation"], int)


def test_post_returns_the_approval_as_an_effect() -> None:
    harness = Harness(posted(event()))
    body = b'{"StartRequests": [{"EventId": "e1"}]}'
    response = harness.call("POST", body=body)
    assert (response.status, response.body, response.cacheable) == (200, b"", False)
    assert response.effects == (Approve("vm-a", ("E1",), T0 + 1),)
    assert harness.book.events["E1"].approvals == (), "the endpoint itself writes nothing"


def test_post_accepts_a_form_content_type_and_several_ids() -> None:
    harness = Harness(posted(event(), event("E2")))
    body = b'{"StartRequests":[{"EventId":"E1"},{"EventId":"E2"}]}'
    form = (("metadata", "true"), ("content-type", "application/x-www-form-urlencoded"))
    response = harness.call("POST", body=body, headers=form)
    assert response.status == 200 and response.effects[0].event_ids == ("E1", "E2")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "The request body is empty"),
        (b"   ", "The request body is empty"),
        (b"StartRequests=E1", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "has no StartRequests"),
        (b'{"startrequests": []}', "has no StartRequests"),
        (b'{"StartRequests": {"EventId": "E1"}}', "must be an array"),
        (b'{"StartRequests": ["E1"]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventID": "E1"}]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventId": 7}]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventId": ""}]}', "needs an EventId string"),
    ],
)
def test_malformed_posts_get_400(body: bytes, detail: str) -> None:
    response = Harness(posted(event())).call("POST", body=body)
    assert response.status == 400 and not response.effects
    message = json.loads(response.body)["error"]
    assert detail in message and '{"StartRequests": [{"EventId": "<id>"}]}' in message


def test_unknown_event_id_gets_a_400_naming_it() -> None:
    response = Harness(posted(event())).call(
        "POST", body=b'{"StartRequests":[{"EventId":"E1"},{"EventId":"ghost"}]}'
    )
    assert response.status == 400 and not response.effects
    assert "EventId 'ghost' is not a scheduled event" in json.loads(response.body)["error"]


def test_empty_start_requests_is_a_no_op() -> None:
    response = Harness(posted(event())).call("POST", body=b'{"StartRequests":[]}')
    assert response.status == 200 and response.effects == (Approve("vm-a", (), T0 + 1),)


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("query", ["", "api-version=latest", "api-version=2019-04-02"])
def test_bad_version_lists_the_scheduled_events_versions(method: str, query: str) -> None:
    response = Harness(EventBook()).call(method, query, body=b'{"StartRequests":[]}')
    assert response.status == 400
    body = json.loads(response.body)
    assert body["newest-versions"] == SE_NEWEST and "api-version is invalid" in body["error"]


def test_dispatcher_rules_apply() -> None:
    harness = Harness(EventBook())
    assert harness.call(headers=()).status == 400
    assert harness.call("PUT").status == 405
    assert harness.call("DELETE").status == 405
    assert harness.call(query="api-version=2020-07-01&format=text").status == 400
    assert harness.call(query="api-version=2019-04-01").status == 200  # SE-only version
    assert harness.call(query="api-version=2021-02-01").status == 200  # general version


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
